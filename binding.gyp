{
  "targets": [
    {
      "target_name": "devplane",
      "sources": [
        "native/src/addon.cc",
        "native/src/shm_writer.cc",
        "native/src/shm_binding.cc",
        "native/src/alsa_loader.cc",
        "native/src/alsa_capture.cc",
        "native/src/alsa_binding.cc",
        "native/src/v4l2_device.cc",
        "native/src/v4l2_ring.cc",
        "native/src/v4l2_jpeg.cc",
        "native/src/v4l2_capture.cc",
        "native/src/v4l2_binding.cc",
        "native/src/proc_holders.cc",
        "native/src/uevent_monitor.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native/include"
      ],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
      "conditions": [
        ["OS!='linux'", { "sources!": ["native/src/shm_writer.cc", "native/src/shm_binding.cc", "native/src/alsa_loader.cc",
                                     "native/src/alsa_capture.cc", "native/src/alsa_binding.cc",
                                     "native/src/v4l2_device.cc", "native/src/v4l2_ring.cc", "native/src/v4l2_jpeg.cc",
                                     "native/src/v4l2_capture.cc", "native/src/v4l2_binding.cc", "native/src/proc_holders.cc",
                                     "native/src/uevent_monitor.cc"] }],
        ["OS=='linux'", { "libraries": ["-ldl", "-lpthread"] }]
      ]
    }
  ]
}
