// One addon for every devplane engine; each part registers its exports here.
#include <napi.h>

#ifdef __linux__
#include "alsa_binding.h"
#include "shm_binding.h"
#include "uevent_monitor.h"
#include "v4l2_binding.h"
#endif

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
#ifdef __linux__
  devplane::InitShm(env, exports);
  devplane::InitAlsa(env, exports);
  devplane::InitUevent(env, exports);
  devplane::InitV4l2(env, exports);
#endif
  exports.Set("platformSupported", Napi::Boolean::New(env,
#ifdef __linux__
                                                      true
#else
                                                      false
#endif
                                                      ));
  return exports;
}

}  // namespace

NODE_API_MODULE(devplane, Init)
