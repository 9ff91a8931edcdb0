// Reading a JavaScript options object in a binding, with errors that name the
// option and what it takes, and an Error carrying a `code` as Node's own do.
#pragma once

#include <napi.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace devplane {
namespace options {

inline Napi::Error codedError(Napi::Env env, const std::string &code, const std::string &message) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

inline bool absent(const Napi::Object &o, const char *key) { return !o.Has(key) || o.Get(key).IsUndefined(); }

inline uint32_t wholeNumber(const Napi::Object &o, const char *key, uint32_t min, uint32_t max, uint32_t fallback) {
  if (absent(o, key)) return fallback;
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= min && d <= max) || d != double(uint64_t(d)))
    throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a whole number from " + std::to_string(min) +
                                            " to " + std::to_string(max));
  return uint32_t(d);
}

inline double number(const Napi::Object &o, const char *key, double min, double max, double fallback) {
  if (absent(o, key)) return fallback;
  Napi::Value v = o.Get(key);
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= min && d <= max))
    throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a number from " + std::to_string(min) + " to " +
                                            std::to_string(max));
  return d;
}

inline std::string text(const Napi::Object &o, const char *key, const std::string &fallback) {
  if (absent(o, key)) return fallback;
  Napi::Value v = o.Get(key);
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a string");
  std::string s = v.As<Napi::String>();
  // A NUL would cut the string short in every C API it reaches.
  if (s.size() != std::strlen(s.c_str()))
    throw Napi::TypeError::New(o.Env(), std::string(key) + " must not contain a NUL character");
  return s;
}

inline bool flag(const Napi::Object &o, const char *key, bool fallback) {
  if (absent(o, key)) return fallback;
  return o.Get(key).ToBoolean();
}

inline void appendNumber(std::string *s, const char *fmt, double v) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), fmt, v);
  *s += buf;
}

}  // namespace options
}  // namespace devplane
