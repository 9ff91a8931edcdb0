// Builds JavaScript values with the plain C API, stopping at the first
// failure. While a worker is being terminated every call into V8 can fail, and
// node-addon-api would turn that failure into a fatal error.
#pragma once

#include <node_api.h>

#include <string>

namespace devplane {

struct JsBuilder {
  explicit JsBuilder(napi_env e) : env(e) {}
  napi_env env;
  bool ok = true;

  napi_value object() {
    napi_value v = nullptr;
    if (ok) ok = napi_create_object(env, &v) == napi_ok;
    return ok ? v : nullptr;
  }
  napi_value array(size_t n) {
    napi_value v = nullptr;
    if (ok) ok = napi_create_array_with_length(env, n, &v) == napi_ok;
    return ok ? v : nullptr;
  }
  napi_value number(double d) {
    napi_value v = nullptr;
    if (ok) ok = napi_create_double(env, d, &v) == napi_ok;
    return ok ? v : nullptr;
  }
  napi_value boolean(bool b) {
    napi_value v = nullptr;
    if (ok) ok = napi_get_boolean(env, b, &v) == napi_ok;
    return ok ? v : nullptr;
  }
  napi_value string(const std::string &s) {
    napi_value v = nullptr;
    if (ok) ok = napi_create_string_utf8(env, s.data(), s.size(), &v) == napi_ok;
    return ok ? v : nullptr;
  }
  void set(napi_value o, const char *key, napi_value v) {
    if (ok) ok = o && v && napi_set_named_property(env, o, key, v) == napi_ok;
  }
  void setIndex(napi_value a, uint32_t i, napi_value v) {
    if (ok) ok = a && v && napi_set_element(env, a, i, v) == napi_ok;
  }
};

}  // namespace devplane
