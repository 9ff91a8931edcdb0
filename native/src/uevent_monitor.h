#pragma once
#include <napi.h>

namespace devplane {
void InitUevent(Napi::Env env, Napi::Object exports);
}
