#pragma once
#include <napi.h>

namespace devplane {
void InitV4l2(Napi::Env env, Napi::Object exports);
}
