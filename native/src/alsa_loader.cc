#include "alsa_loader.h"

#include <dlfcn.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace devplane {
namespace alsa {

namespace {

std::mutex loadMu;
Api api;
bool loaded = false;

thread_local std::string lastMessage;

// alsa-lib prints its diagnostics to stderr by default, where a Node-RED user
// never looks; keeping the last one lets the node's error quote it instead.
void errorHandler(const char *, int, const char *, int, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  lastMessage = buf;
}

template <typename Fn>
bool bind(void *handle, const char *symbol, Fn *slot, std::string *missing) {
  void *p = dlsym(handle, symbol);
  if (!p) {
    if (!missing->empty()) *missing += ", ";
    *missing += symbol;
    return false;
  }
  *slot = reinterpret_cast<Fn>(p);
  return true;
}

}  // namespace

std::string libraryName() {
  const char *env = std::getenv("DEVPLANE_LIBASOUND");
  return env && *env ? env : "libasound.so.2";
}

const Api *load(std::string *error) {
  std::lock_guard<std::mutex> lk(loadMu);
  if (loaded) return &api;
  std::string name = libraryName();
  dlerror();
  void *h = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *why = dlerror();
    *error = "cannot load alsa-lib (" + name + "): " + (why ? why : "unknown reason") +
             ". Install it (Debian, Ubuntu, Raspberry Pi OS: sudo apt install libasound2) and redeploy";
    return nullptr;
  }
  Api a{};
  std::string missing;
  bind(h, "snd_pcm_open", &a.pcm_open, &missing);
  bind(h, "snd_pcm_close", &a.pcm_close, &missing);
  bind(h, "snd_pcm_hw_params_malloc", &a.hw_params_malloc, &missing);
  bind(h, "snd_pcm_hw_params_free", &a.hw_params_free, &missing);
  bind(h, "snd_pcm_hw_params_any", &a.hw_params_any, &missing);
  bind(h, "snd_pcm_hw_params_set_access", &a.hw_params_set_access, &missing);
  bind(h, "snd_pcm_hw_params_test_format", &a.hw_params_test_format, &missing);
  bind(h, "snd_pcm_hw_params_set_format", &a.hw_params_set_format, &missing);
  bind(h, "snd_pcm_hw_params_get_channels_min", &a.hw_params_get_channels_min, &missing);
  bind(h, "snd_pcm_hw_params_get_channels_max", &a.hw_params_get_channels_max, &missing);
  bind(h, "snd_pcm_hw_params_set_channels", &a.hw_params_set_channels, &missing);
  bind(h, "snd_pcm_hw_params_set_rate_near", &a.hw_params_set_rate_near, &missing);
  bind(h, "snd_pcm_hw_params_set_buffer_size_near", &a.hw_params_set_buffer_size_near, &missing);
  bind(h, "snd_pcm_hw_params_set_period_size_near", &a.hw_params_set_period_size_near, &missing);
  bind(h, "snd_pcm_hw_params", &a.hw_params, &missing);
  bind(h, "snd_pcm_hw_params_get_period_size", &a.hw_params_get_period_size, &missing);
  bind(h, "snd_pcm_hw_params_get_buffer_size", &a.hw_params_get_buffer_size, &missing);
  bind(h, "snd_pcm_sw_params_malloc", &a.sw_params_malloc, &missing);
  bind(h, "snd_pcm_sw_params_free", &a.sw_params_free, &missing);
  bind(h, "snd_pcm_sw_params_current", &a.sw_params_current, &missing);
  bind(h, "snd_pcm_sw_params_set_avail_min", &a.sw_params_set_avail_min, &missing);
  bind(h, "snd_pcm_sw_params_set_start_threshold", &a.sw_params_set_start_threshold, &missing);
  bind(h, "snd_pcm_sw_params", &a.sw_params, &missing);
  bind(h, "snd_pcm_start", &a.pcm_start, &missing);
  bind(h, "snd_pcm_state", &a.pcm_state, &missing);
  bind(h, "snd_pcm_readi", &a.pcm_readi, &missing);
  bind(h, "snd_pcm_avail_update", &a.pcm_avail_update, &missing);
  bind(h, "snd_pcm_recover", &a.pcm_recover, &missing);
  bind(h, "snd_pcm_poll_descriptors_count", &a.pcm_poll_descriptors_count, &missing);
  bind(h, "snd_pcm_poll_descriptors", &a.pcm_poll_descriptors, &missing);
  bind(h, "snd_pcm_poll_descriptors_revents", &a.pcm_poll_descriptors_revents, &missing);
  bind(h, "snd_strerror", &a.strerror, &missing);
  bind(h, "snd_lib_error_set_handler", &a.lib_error_set_handler, &missing);
  bind(h, "snd_device_name_hint", &a.device_name_hint, &missing);
  bind(h, "snd_device_name_get_hint", &a.device_name_get_hint, &missing);
  bind(h, "snd_device_name_free_hint", &a.device_name_free_hint, &missing);
  bind(h, "snd_card_next", &a.card_next, &missing);
  bind(h, "snd_card_get_index", &a.card_get_index, &missing);
  bind(h, "snd_card_get_name", &a.card_get_name, &missing);
  bind(h, "snd_card_get_longname", &a.card_get_longname, &missing);
  if (!missing.empty()) {
    dlclose(h);
    *error = name + " is not a usable alsa-lib: it lacks " + missing + ". Install libasound2 1.0.16 or later";
    return nullptr;
  }
  a.lib_error_set_handler(errorHandler);
  api = a;
  loaded = true;
  return &api;
}

std::string takeLastMessage() {
  std::string m;
  m.swap(lastMessage);
  return m;
}

}  // namespace alsa
}  // namespace devplane
