// Builds JavaScript values with the plain C API, stopping at the first
// failure. While a worker is being terminated every call into V8 can fail, and
// node-addon-api would turn that failure into a fatal error.
#pragma once

#include <node_api.h>

#include <cstring>
#include <string>
#include <vector>

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
  // `n` doubles in `into` (a Float64Array the caller keeps, large enough) or
  // else in a new Float64Array. Numbers in a row cost one copy; as properties
  // of a fresh object each costs a key lookup and a map transition.
  napi_value float64(const double *values, size_t n, napi_value into) {
    if (!ok) return nullptr;
    if (into) {
      napi_typedarray_type type;
      size_t length;
      void *data = nullptr;
      napi_value ab;
      size_t offset;
      ok = napi_get_typedarray_info(env, into, &type, &length, &data, &ab, &offset) == napi_ok;
      if (ok) std::memcpy(data, values, n * sizeof(double));
      return ok ? into : nullptr;
    }
    void *data = nullptr;
    napi_value ab = nullptr, ta = nullptr;
    ok = napi_create_arraybuffer(env, n * sizeof(double), &data, &ab) == napi_ok;
    if (!ok) return nullptr;
    std::memcpy(data, values, n * sizeof(double));
    ok = napi_create_typedarray(env, napi_float64_array, n, ab, 0, &ta) == napi_ok;
    return ok ? ta : nullptr;
  }
  napi_value float64(const std::vector<double> &values, napi_value into) { return float64(values.data(), values.size(), into); }
};

// A Float64Array held for reuse as `float64`'s `into`: JavaScript reads each
// row before the call returns, so one array serves every call.
class ScratchRow {
 public:
  void set(napi_env env, napi_value typedArray) {
    drop(env);
    if (typedArray) napi_create_reference(env, typedArray, 1, &ref_);
  }
  void drop(napi_env env) {
    if (ref_) napi_delete_reference(env, ref_);
    ref_ = nullptr;
  }
  // The array when it holds at least `values` doubles, else nullptr.
  napi_value get(napi_env env, size_t values) const {
    napi_value v = nullptr;
    if (!ref_ || napi_get_reference_value(env, ref_, &v) != napi_ok || !v) return nullptr;
    napi_typedarray_type type;
    size_t length = 0;
    void *data = nullptr;
    napi_value ab;
    size_t offset;
    if (napi_get_typedarray_info(env, v, &type, &length, &data, &ab, &offset) != napi_ok || type != napi_float64_array ||
        length < values)
      return nullptr;
    return v;
  }

 private:
  napi_ref ref_ = nullptr;
};

}  // namespace devplane
