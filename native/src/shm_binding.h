#pragma once
#include <napi.h>

namespace devplane {
void InitShm(Napi::Env env, Napi::Object exports);
}
