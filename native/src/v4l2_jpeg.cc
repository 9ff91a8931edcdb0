#include "v4l2_jpeg.h"

#include <dlfcn.h>
#include <linux/videodev2.h>

#include <cstdlib>
#include <cstring>
#include <mutex>

namespace devplane {
namespace v4l2 {

namespace {

// TurboJPEG's ABI (turbojpeg.h, stable since libjpeg-turbo 1.4).
typedef void *tjhandle;
constexpr int TJSAMP_422 = 1;
constexpr int TJSAMP_420 = 2;
constexpr int TJSAMP_GRAY = 3;
constexpr int TJPF_RGB = 0;
constexpr int TJPF_BGR = 1;
constexpr int TJPF_GRAY = 6;
constexpr int TJFLAG_NOREALLOC = 1024;
constexpr int TJFLAG_FASTDCT = 2048;

struct Api {
  tjhandle (*initCompress)();
  int (*destroy)(tjhandle);
  unsigned long (*bufSize)(int, int, int);
  int (*compress2)(tjhandle, const unsigned char *, int, int, int, int, unsigned char **, unsigned long *, int, int,
                   int);
  int (*compressFromYUVPlanes)(tjhandle, const unsigned char **, int, const int *, int, int, unsigned char **,
                               unsigned long *, int, int);
  char *(*errorStr)();
};

std::mutex loadMu;
Api api;
bool loaded = false;

template <typename Fn>
bool bind(void *h, const char *symbol, Fn *slot, std::string *missing) {
  void *p = dlsym(h, symbol);
  if (!p) {
    *missing += std::string(missing->empty() ? "" : ", ") + symbol;
    return false;
  }
  *slot = reinterpret_cast<Fn>(p);
  return true;
}

const Api *load(std::string *error) {
  std::lock_guard<std::mutex> lk(loadMu);
  if (loaded) return &api;
  std::string name = jpegLibraryName();
  dlerror();
  void *h = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *why = dlerror();
    *error = "cannot load libjpeg-turbo (" + name + "): " + (why ? why : "unknown reason") +
             ". Install it (Debian, Ubuntu, Raspberry Pi OS: sudo apt install libturbojpeg0) and redeploy, or "
             "choose a camera format that is JPEG already (MJPEG)";
    return nullptr;
  }
  std::string missing;
  Api a{};
  bool ok = bind(h, "tjInitCompress", &a.initCompress, &missing);
  ok &= bind(h, "tjDestroy", &a.destroy, &missing);
  ok &= bind(h, "tjBufSize", &a.bufSize, &missing);
  ok &= bind(h, "tjCompress2", &a.compress2, &missing);
  ok &= bind(h, "tjCompressFromYUVPlanes", &a.compressFromYUVPlanes, &missing);
  ok &= bind(h, "tjGetErrorStr", &a.errorStr, &missing);
  if (!ok) {
    dlclose(h);
    *error = name + " lacks " + missing + " (libjpeg-turbo 1.4 or later is needed)";
    return nullptr;
  }
  // Kept loaded for the life of the process, like alsa-lib.
  api = a;
  loaded = true;
  return &api;
}

}  // namespace

std::string jpegLibraryName() {
  const char *env = std::getenv("DEVPLANE_LIBTURBOJPEG");
  return env && *env ? env : "libturbojpeg.so.0";
}

bool jpegAvailable(std::string *error) { return load(error) != nullptr; }

bool jpegEncodable(uint32_t f) {
  return f == V4L2_PIX_FMT_YUYV || f == V4L2_PIX_FMT_NV12 || f == V4L2_PIX_FMT_GREY || f == V4L2_PIX_FMT_RGB24 ||
         f == V4L2_PIX_FMT_BGR24;
}

JpegEncoder::~JpegEncoder() {
  if (handle_ && loaded) api.destroy(handle_);
}

bool JpegEncoder::encode(uint32_t fourcc, uint32_t width, uint32_t height, uint32_t stride, const uint8_t *data,
                         size_t bytes, int quality, uint8_t **out, size_t *outLen, std::string *error) {
  const Api *a = load(error);
  if (!a) return false;
  if (!handle_) handle_ = a->initCompress();
  if (!handle_) {
    *error = std::string("cannot start a JPEG encoder: ") + a->errorStr();
    return false;
  }
  const int w = int(width), h = int(height);
  int subsamp = fourcc == V4L2_PIX_FMT_GREY ? TJSAMP_GRAY : fourcc == V4L2_PIX_FMT_YUYV ? TJSAMP_422 : TJSAMP_420;
  unsigned long cap = a->bufSize(w, h, subsamp);
  auto *buf = static_cast<uint8_t *>(std::malloc(cap));
  if (!buf) {
    *error = "out of memory for a JPEG frame";
    return false;
  }
  unsigned long size = cap;
  unsigned char *dst = buf;
  const int flags = TJFLAG_NOREALLOC | TJFLAG_FASTDCT;
  int rc = -1;
  auto tooShort = [&](size_t need) {
    if (bytes >= need) return false;
    *error = "frame holds " + std::to_string(bytes) + " bytes, fewer than its format needs (" + std::to_string(need) + ")";
    return true;
  };
  if (fourcc == V4L2_PIX_FMT_YUYV) {
    if (tooShort(size_t(stride) * height)) return std::free(buf), false;
    // Packed 4:2:2 to planes, the layout TurboJPEG takes without converting to RGB.
    const size_t cw = (width + 1) / 2;
    planes_.resize(size_t(width) * height + 2 * cw * height);
    uint8_t *py = planes_.data(), *pu = py + size_t(width) * height, *pv = pu + cw * height;
    for (uint32_t y = 0; y < height; y++) {
      const uint8_t *s = data + size_t(y) * stride;
      uint8_t *dy = py + size_t(y) * width, *du = pu + cw * y, *dv = pv + cw * y;
      for (uint32_t x = 0; x + 1 < width; x += 2, s += 4) {
        dy[x] = s[0];
        dy[x + 1] = s[2];
        du[x / 2] = s[1];
        dv[x / 2] = s[3];
      }
    }
    const unsigned char *p[3] = {py, pu, pv};
    int strides[3] = {w, int(cw), int(cw)};
    rc = a->compressFromYUVPlanes(handle_, p, w, strides, h, subsamp, &dst, &size, quality, flags);
  } else if (fourcc == V4L2_PIX_FMT_NV12) {
    const uint32_t cw = (width + 1) / 2, ch = (height + 1) / 2;
    if (tooShort(size_t(stride) * height + size_t(stride) * ch)) return std::free(buf), false;
    planes_.resize(2 * size_t(cw) * ch);
    uint8_t *pu = planes_.data(), *pv = pu + size_t(cw) * ch;
    const uint8_t *uv = data + size_t(stride) * height;
    for (uint32_t y = 0; y < ch; y++) {
      const uint8_t *s = uv + size_t(y) * stride;
      for (uint32_t x = 0; x < cw; x++) {
        pu[size_t(y) * cw + x] = s[2 * x];
        pv[size_t(y) * cw + x] = s[2 * x + 1];
      }
    }
    const unsigned char *p[3] = {data, pu, pv};
    int strides[3] = {int(stride), int(cw), int(cw)};
    rc = a->compressFromYUVPlanes(handle_, p, w, strides, h, subsamp, &dst, &size, quality, flags);
  } else if (fourcc == V4L2_PIX_FMT_GREY || fourcc == V4L2_PIX_FMT_RGB24 || fourcc == V4L2_PIX_FMT_BGR24) {
    if (tooShort(size_t(stride) * height)) return std::free(buf), false;
    int pf = fourcc == V4L2_PIX_FMT_GREY ? TJPF_GRAY : fourcc == V4L2_PIX_FMT_RGB24 ? TJPF_RGB : TJPF_BGR;
    rc = a->compress2(handle_, data, w, int(stride), h, pf, &dst, &size, subsamp, quality, flags);
  } else {
    std::free(buf);
    *error = "frames in this format cannot be encoded as JPEG";
    return false;
  }
  if (rc != 0) {
    std::free(buf);
    *error = std::string("JPEG encoding failed: ") + a->errorStr();
    return false;
  }
  // The block was sized for the worst case; hand back only what was used.
  auto *fit = static_cast<uint8_t *>(std::realloc(buf, size ? size : 1));
  *out = fit ? fit : buf;
  *outLen = size;
  return true;
}

}  // namespace v4l2
}  // namespace devplane
