#pragma once
#include <napi.h>

namespace devplane {
void InitAlsa(Napi::Env env, Napi::Object exports);
}
