// Wakes the JavaScript thread from a capture thread without a lock.
//
// Node's thread-safe functions write their wake-up (uv_async_send) while
// holding the queue mutex; JavaScript, woken on the other core, then takes
// that mutex first thing and often finds it still held, so it sleeps again
// until the capture thread lets go: two wake-ups per frame instead of one.
// uv_async_send alone is lock-free (a flag and an eventfd write), and the
// sink already keeps its own queue.
//
// Threading: create, close and the handler run on the JavaScript thread;
// wake() may be called from any thread until close(). The caller makes sure
// no thread calls wake() once close() has started (a capture detaches its
// sinks, and joins their helper threads, before they are closed).
#pragma once

#include <node_api.h>
#include <uv.h>

#include <memory>

namespace devplane {

class JsWakeup {
 public:
  // Called on the JavaScript thread with the callback, inside a callback
  // scope (so promises and process.nextTick run after it, as for any event).
  using Handler = void (*)(napi_env env, napi_value callback, void *data);

  // `keep` stays alive until the handle is closed: what `data` points into.
  static JsWakeup *create(napi_env env, napi_value callback, const char *name, Handler handler, void *data,
                          std::shared_ptr<void> keep) {
    auto *w = new JsWakeup();
    w->env_ = env;
    w->handler_ = handler;
    w->data_ = data;
    w->keep_ = std::move(keep);
    uv_loop_t *loop = nullptr;
    napi_value resource = nullptr, resourceName = nullptr;
    bool ok = napi_get_uv_event_loop(env, &loop) == napi_ok && loop &&
              napi_create_reference(env, callback, 1, &w->callback_) == napi_ok &&
              napi_create_object(env, &resource) == napi_ok &&
              napi_create_reference(env, resource, 1, &w->resource_) == napi_ok &&
              napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resourceName) == napi_ok &&
              napi_async_init(env, resource, resourceName, &w->context_) == napi_ok;
    if (ok) ok = uv_async_init(loop, &w->async_, &JsWakeup::OnAsync) == 0;
    if (!ok) {
      w->dropJs();
      delete w;
      return nullptr;
    }
    w->async_.data = w;
    return w;
  }

  void wake() { uv_async_send(&async_); }

  // Stops callbacks now; the object frees itself once libuv has let go.
  void close() {
    dropJs();
    uv_close(reinterpret_cast<uv_handle_t *>(&async_), [](uv_handle_t *h) { delete static_cast<JsWakeup *>(h->data); });
  }

 private:
  JsWakeup() = default;

  static void OnAsync(uv_async_t *handle) {
    auto *w = static_cast<JsWakeup *>(handle->data);
    if (!w->callback_) return;
    napi_env env = w->env_;
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) return;
    napi_value callback = nullptr, resource = nullptr;
    napi_callback_scope cbScope = nullptr;
    if (napi_get_reference_value(env, w->callback_, &callback) == napi_ok && callback &&
        napi_get_reference_value(env, w->resource_, &resource) == napi_ok && resource &&
        napi_open_callback_scope(env, resource, w->context_, &cbScope) == napi_ok) {
      w->handler_(env, callback, w->data_);
      // As for a thread-safe function: an exception the callback threw is
      // uncaught, and Node reports it.
      bool pending = false;
      if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
        napi_value error;
        if (napi_get_and_clear_last_exception(env, &error) == napi_ok) napi_fatal_exception(env, error);
      }
      napi_close_callback_scope(env, cbScope);
    }
    napi_close_handle_scope(env, scope);
  }

  void dropJs() {
    if (context_) napi_async_destroy(env_, context_);
    if (callback_) napi_delete_reference(env_, callback_);
    if (resource_) napi_delete_reference(env_, resource_);
    context_ = nullptr;
    callback_ = nullptr;
    resource_ = nullptr;
  }

  uv_async_t async_{};
  napi_env env_ = nullptr;
  napi_ref callback_ = nullptr;
  napi_ref resource_ = nullptr;
  napi_async_context context_ = nullptr;
  Handler handler_ = nullptr;
  void *data_ = nullptr;
  std::shared_ptr<void> keep_;
};

}  // namespace devplane
