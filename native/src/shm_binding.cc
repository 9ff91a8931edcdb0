// Node-API surface of the ring: RingWriter, RingReader (synchronous, for
// "latest" and snapshots) and RingSubscription (a native thread that waits on
// the futex and hands every frame to JavaScript). lib/shm wraps these in types.
#include <napi.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "shm_binding.h"
#include "shm_writer.h"

namespace devplane {

namespace {

Napi::Error ringError(Napi::Env env, const std::string &code, const std::string &message) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

// limit: counts stay exact below 2^53; nanosecond timestamps legitimately exceed it.
uint64_t toU64(const Napi::Value &v, const char *what, double limit = 9007199254740991.0) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > limit || d != double(uint64_t(d)))
    throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a whole number of at least 0");
  return uint64_t(d);
}

const char *readErrorCode(int rc) {
  switch (rc) {
    case DP_RING_E_CORRUPT: return "ECORRUPT";
    case DP_RING_E_REPLACED: return "EREPLACED";
    default: return "ESYSTEM";
  }
}

// A frame copied out of the ring, owned until JavaScript takes it.
struct CopiedFrame {
  uint8_t *data = nullptr;
  dp_ring_frame_info info{};
  std::string meta;
};

// Copies the next frame (or the latest) into an exactly-sized heap block.
// The frame's length is learnt first and the copy retried if the writer
// replaced the frame in between, so no frame is copied twice.
int copyFrame(dp_ring_reader *r, bool latest, int timeoutMs, CopiedFrame *out) {
  static char empty[1];
  uint64_t cap = 0;
  uint8_t *buf = nullptr;
  char meta[DP_RING_META_CAPACITY + 1];
  int resynced = 0;
  for (;;) {
    int rc = latest ? dp_ring_latest(r, buf ? buf : reinterpret_cast<uint8_t *>(empty), cap, meta, sizeof(meta), &out->info)
                    : dp_ring_read(r, buf ? buf : reinterpret_cast<uint8_t *>(empty), cap, meta, sizeof(meta), &out->info, timeoutMs);
    resynced |= out->info.resynced;
    if (rc == DP_RING_E_TOO_SMALL) {
      std::free(buf);
      cap = out->info.length;
      buf = static_cast<uint8_t *>(std::malloc(cap));
      if (!buf) {
        std::snprintf(r->err, sizeof(r->err), "out of memory for a %llu-byte frame", (unsigned long long)cap);
        return DP_RING_E_SYSTEM;
      }
      timeoutMs = 0;  // the frame is there; do not wait again
      continue;
    }
    if (rc != DP_RING_OK) {
      std::free(buf);
      return rc;
    }
    if (!buf) buf = static_cast<uint8_t *>(std::malloc(1));
    out->info.resynced = resynced;
    out->data = buf;
    out->meta.assign(meta, out->info.meta_len);
    return rc;
  }
}

Napi::Object frameToJs(Napi::Env env, CopiedFrame &f, uint64_t extraMissed) {
  Napi::Object o = Napi::Object::New(env);
  uint64_t len = f.info.length;
  Napi::Buffer<uint8_t> data = Napi::Buffer<uint8_t>::New(env, f.data, len, [](Napi::Env, uint8_t *p) { std::free(p); });
  f.data = nullptr;
  o.Set("data", data);
  o.Set("seq", Napi::Number::New(env, double(f.info.seq)));
  o.Set("generation", Napi::Number::New(env, f.info.generation));
  o.Set("realtimeNs", Napi::Number::New(env, double(f.info.realtime_ns)));
  o.Set("monotonicNs", Napi::Number::New(env, double(f.info.monotonic_ns)));
  o.Set("missed", Napi::Number::New(env, double(f.info.missed + extraMissed)));
  o.Set("resynced", Napi::Boolean::New(env, f.info.resynced != 0));
  o.Set("meta", Napi::String::New(env, f.meta));
  return o;
}

// ---------------------------------------------------------------- writer

class WriterWrap : public Napi::ObjectWrap<WriterWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "RingWriter",
                       {InstanceMethod<&WriterWrap::Write>("write"),
                        InstanceMethod<&WriterWrap::Readers>("readers"),
                        InstanceMethod<&WriterWrap::SetContentType>("setContentType"),
                        InstanceMethod<&WriterWrap::Info>("info"),
                        InstanceMethod<&WriterWrap::Close>("close")});
  }

  WriterWrap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<WriterWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsString() || !info[1].IsObject())
      throw Napi::TypeError::New(env, "RingWriter(name, options) takes a ring name and an options object");
    std::string name = info[0].As<Napi::String>();
    Napi::Object o = info[1].As<Napi::Object>();
    RingWriterOptions opts;
    if (o.Has("slots")) opts.slots = uint32_t(toU64(o.Get("slots"), "slots"));
    if (o.Has("slotSize")) opts.slotSize = toU64(o.Get("slotSize"), "slotSize");
    if (o.Has("mode")) opts.mode = uint32_t(toU64(o.Get("mode"), "mode"));
    if (o.Has("maxBytes")) opts.maxBytes = toU64(o.Get("maxBytes"), "maxBytes");
    if (o.Has("contentType")) {
      if (!o.Get("contentType").IsString()) throw Napi::TypeError::New(env, "contentType must be a string");
      opts.contentType = o.Get("contentType").As<Napi::String>();
    }
    keep_ = o.Has("keep") && o.Get("keep").ToBoolean();
    try {
      writer_ = std::make_unique<RingWriter>(name, opts);
    } catch (const RingError &e) {
      throw ringError(env, e.code, e.what());
    }
  }

  ~WriterWrap() override {
    if (writer_) writer_->close(!keep_);
  }

 private:
  RingWriter &open(Napi::Env env) {
    if (!writer_ || !writer_->isOpen()) throw ringError(env, "ECLOSED", "the ring writer is closed");
    return *writer_;
  }

  // write(payload: Buffer, meta?: string, realtimeNs?: number, monotonicNs?: number): number
  Napi::Value Write(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    RingWriter &w = open(env);
    if (info.Length() < 1 || !info[0].IsBuffer())
      throw Napi::TypeError::New(env, "write(payload) needs a Buffer");
    Napi::Buffer<uint8_t> buf = info[0].As<Napi::Buffer<uint8_t>>();
    std::string meta;
    if (info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsNull()) {
      if (!info[1].IsString()) throw Napi::TypeError::New(env, "meta must be a string");
      meta = info[1].As<Napi::String>();
    }
    uint64_t rt = info.Length() > 2 && !info[2].IsUndefined() ? toU64(info[2], "realtimeNs", 1.8e19)
                                                               : dp_ring_clock_ns(CLOCK_REALTIME);
    uint64_t mono = info.Length() > 3 && !info[3].IsUndefined() ? toU64(info[3], "monotonicNs", 1.8e19)
                                                                 : dp_ring_clock_ns(CLOCK_MONOTONIC);
    try {
      uint64_t seq = w.write(buf.Data(), buf.Length(), meta.data(), uint32_t(meta.size() > UINT32_MAX ? UINT32_MAX : meta.size()),
                             rt, mono);
      return Napi::Number::New(env, double(seq));
    } catch (const RingError &e) {
      throw ringError(env, e.code, e.what());
    }
  }

  Napi::Value Readers(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Napi::Array out = Napi::Array::New(env);
    if (!writer_) return out;
    uint32_t i = 0;
    for (const RingReaderStatus &r : writer_->readers()) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("pid", Napi::Number::New(env, r.pid));
      o.Set("lastSeq", Napi::Number::New(env, double(r.lastSeq)));
      o.Set("behind", Napi::Number::New(env, double(r.behind)));
      o.Set("missed", Napi::Number::New(env, double(r.missed)));
      o.Set("idleMs", Napi::Number::New(env, double(r.idleNs) / 1e6));
      out.Set(i++, o);
    }
    return out;
  }

  Napi::Value SetContentType(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "contentType must be a string");
    try {
      open(env).setContentType(info[0].As<Napi::String>());
    } catch (const RingError &e) {
      throw ringError(env, e.code, e.what());
    }
    return env.Undefined();
  }

  Napi::Value Info(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    bool isOpen = writer_ && writer_->isOpen();
    o.Set("open", Napi::Boolean::New(env, isOpen));
    if (!writer_) return o;
    o.Set("name", Napi::String::New(env, writer_->name()));
    o.Set("seq", Napi::Number::New(env, double(writer_->seq())));
    o.Set("generation", Napi::Number::New(env, writer_->generation()));
    o.Set("slots", Napi::Number::New(env, writer_->slots()));
    o.Set("slotSize", Napi::Number::New(env, double(writer_->slotSize())));
    o.Set("tookOver", Napi::Boolean::New(env, writer_->tookOver()));
    return o;
  }

  Napi::Value Close(const Napi::CallbackInfo &info) {
    bool unlinkIt = info.Length() > 0 && !info[0].IsUndefined() ? info[0].ToBoolean().Value() : !keep_;
    if (writer_) writer_->close(unlinkIt);
    return info.Env().Undefined();
  }

  std::unique_ptr<RingWriter> writer_;
  bool keep_ = false;
};

// ---------------------------------------------------------------- reader

void throwOpenError(Napi::Env env, const dp_ring_reader &r, int err) {
  const char *code = err == ENOENT ? "ENOENT" : err == EAGAIN ? "EAGAIN" : err == EPROTO ? "ECORRUPT"
                     : err == EINVAL ? "EINVAL" : err == EACCES ? "EACCES" : "ESYSTEM";
  throw ringError(env, code, r.err);
}

class ReaderWrap : public Napi::ObjectWrap<ReaderWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "RingReader",
                       {InstanceMethod<&ReaderWrap::TryRead>("tryRead"),
                        InstanceMethod<&ReaderWrap::Latest>("latest"),
                        InstanceMethod<&ReaderWrap::Info>("info"),
                        InstanceMethod<&ReaderWrap::Close>("close")});
  }

  ReaderWrap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<ReaderWrap>(info) {
    Napi::Env env = info.Env();
    r_.fd = -1;
    r_.table_index = -1;
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "RingReader(name) takes a ring name");
    std::string name = info[0].As<Napi::String>();
    int flags = 0;
    if (info.Length() > 1 && info[1].IsObject() && info[1].As<Napi::Object>().Get("fromOldest").ToBoolean())
      flags |= DP_RING_FROM_OLDEST;
    if (name.size() != std::strlen(name.c_str())) name = "\x01";  // an embedded NUL makes it invalid
    if (dp_ring_open(&r_, name.c_str(), flags) != 0) throwOpenError(env, r_, errno);
  }

  ~ReaderWrap() override { dp_ring_close(&r_); }

 private:
  Napi::Value read(const Napi::CallbackInfo &info, bool latest) {
    Napi::Env env = info.Env();
    if (!r_.base) throw ringError(env, "ECLOSED", "the ring reader is closed");
    CopiedFrame f;
    int rc = copyFrame(&r_, latest, 0, &f);
    if (rc == DP_RING_TIMEOUT) return env.Null();
    if (rc != DP_RING_OK) throw ringError(env, readErrorCode(rc), r_.err[0] ? r_.err : "the ring was replaced; reopen it");
    return frameToJs(env, f, 0);
  }

  Napi::Value TryRead(const Napi::CallbackInfo &info) { return read(info, false); }
  Napi::Value Latest(const Napi::CallbackInfo &info) { return read(info, true); }

  Napi::Value Info(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("open", Napi::Boolean::New(env, r_.base != nullptr));
    if (!r_.base) return o;
    char ct[DP_RING_CONTENT_TYPE_CAPACITY];
    o.Set("contentType", Napi::String::New(env, dp_ring_content_type(&r_, ct, sizeof(ct))));
    o.Set("generation", Napi::Number::New(env, __atomic_load_n(&r_.hdr->generation, __ATOMIC_ACQUIRE)));
    o.Set("writeSeq", Napi::Number::New(env, double(__atomic_load_n(&r_.hdr->write_seq, __ATOMIC_ACQUIRE))));
    o.Set("writerAlive", Napi::Boolean::New(env, dp_ring_writer_alive(&r_) != 0));
    o.Set("replaced", Napi::Boolean::New(env, dp_ring_replaced(&r_) != 0));
    o.Set("slots", Napi::Number::New(env, r_.slot_count));
    o.Set("slotSize", Napi::Number::New(env, double(r_.slot_size)));
    return o;
  }

  Napi::Value Close(const Napi::CallbackInfo &info) {
    dp_ring_close(&r_);
    return info.Env().Undefined();
  }

  dp_ring_reader r_{};
};

// ---------------------------------------------------------------- subscription

struct SubEvent {
  enum Kind { Frame, State, Error };
  SubEvent(Kind k, std::string t) : kind(k), text(std::move(t)) {}
  SubEvent(CopiedFrame &&f) : kind(Frame), frame(std::move(f)) {}
  Kind kind;
  CopiedFrame frame;
  std::string text;         // state name or error message
  std::string contentType;  // with a state
  uint64_t dropped = 0;
};

class SubscriptionWrap : public Napi::ObjectWrap<SubscriptionWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "RingSubscription", {InstanceMethod<&SubscriptionWrap::Stop>("stop")});
  }

  // RingSubscription(name, onEvents(events[]), { queue, fromOldest })
  SubscriptionWrap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<SubscriptionWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsString() || !info[1].IsFunction())
      throw Napi::TypeError::New(env, "RingSubscription(name, callback, options) needs a ring name and a function");
    name_ = info[0].As<Napi::String>().Utf8Value();
    if (name_.size() != std::strlen(name_.c_str()) || !dp_ring_name_valid(name_.c_str()))
      throw ringError(env, "EINVAL", "invalid ring name: use 1 to 200 of A-Z a-z 0-9 . _ -");
    if (info.Length() > 2 && info[2].IsObject()) {
      Napi::Object o = info[2].As<Napi::Object>();
      if (o.Has("queue")) queueMax_ = std::max<uint64_t>(1, toU64(o.Get("queue"), "queue"));
      if (o.Get("fromOldest").ToBoolean()) flags_ |= DP_RING_FROM_OLDEST;
    }
    reader_.fd = -1;
    reader_.table_index = -1;
    tsfn_ = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "devplane-ring-subscription", 0, 1);
    // An idle subscription must not keep the process alive by itself.
    tsfn_.Unref(env);
    thread_ = std::thread([this] { run(); });
  }

  ~SubscriptionWrap() override { shutdown(); }

 private:
  Napi::Value Stop(const Napi::CallbackInfo &info) {
    shutdown();
    return info.Env().Undefined();
  }

  void shutdown() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard<std::mutex> lk(waitMu_);
      stopping_ = true;
    }
    waitCv_.notify_all();
    {
      std::lock_guard<std::mutex> lk(queueMu_);
      stopQueue_ = true;
    }
    spaceCv_.notify_all();
    {
      std::lock_guard<std::mutex> lk(readerMu_);
      // Wake our thread out of FUTEX_WAIT. Other readers of the ring wake
      // too, find nothing new and sleep again.
      cancel_ = 1;
      if (reader_.base) dp_ring_futex(&reader_.hdr->futex, FUTEX_WAKE, INT_MAX, nullptr);
    }
    thread_.join();
    tsfn_.Release();
    std::lock_guard<std::mutex> lk(queueMu_);
    for (SubEvent &e : queue_) std::free(e.frame.data);
    queue_.clear();
  }

  bool sleepFor(int ms) {
    std::unique_lock<std::mutex> lk(waitMu_);
    return !waitCv_.wait_for(lk, std::chrono::milliseconds(ms), [this] { return stopping_; });
  }

  bool stopping() {
    std::lock_guard<std::mutex> lk(waitMu_);
    return stopping_;
  }

  void push(SubEvent &&ev) {
    bool wasEmpty;
    {
      std::lock_guard<std::mutex> lk(queueMu_);
      wasEmpty = queue_.empty();
      if (ev.kind == SubEvent::Frame) {
        // JavaScript is behind: drop the oldest queued frame, never grow.
        size_t frames = 0;
        for (const SubEvent &e : queue_) frames += e.kind == SubEvent::Frame;
        // waitForSpace() keeps this from happening; the bound holds regardless.
        if (frames >= queueMax_) {
          for (auto it = queue_.begin(); it != queue_.end(); ++it) {
            if (it->kind != SubEvent::Frame) continue;
            ev.dropped += it->dropped + 1;
            std::free(it->frame.data);
            queue_.erase(it);
            framesQueued_--;
            break;
          }
        }
      }
      if (ev.kind == SubEvent::Frame) framesQueued_++;
      queue_.push_back(std::move(ev));
    }
    if (wasEmpty) tsfn_.NonBlockingCall(this, [](Napi::Env env, Napi::Function cb, SubscriptionWrap *self) {
      self->deliver(env, cb);
    });
  }

  // Waits until JavaScript has room for another frame. Frames not yet taken
  // stay in the ring, so a reader that falls behind loses the oldest ones
  // there, and the ring counts them exactly.
  bool waitForSpace() {
    std::unique_lock<std::mutex> lk(queueMu_);
    spaceCv_.wait(lk, [this] { return stopQueue_ || framesQueued_ < queueMax_; });
    return !stopQueue_;
  }

  void deliver(Napi::Env env, Napi::Function cb) {
    std::deque<SubEvent> batch;
    {
      std::lock_guard<std::mutex> lk(queueMu_);
      batch.swap(queue_);
      framesQueued_ = 0;
    }
    spaceCv_.notify_all();
    Napi::Array arr = Napi::Array::New(env, batch.size());
    uint32_t i = 0;
    for (SubEvent &e : batch) {
      Napi::Object o;
      if (e.kind == SubEvent::Frame) {
        o = frameToJs(env, e.frame, e.dropped);
        o.Set("type", "frame");
      } else {
        o = Napi::Object::New(env);
        o.Set("type", e.kind == SubEvent::State ? "state" : "error");
        o.Set(e.kind == SubEvent::State ? "state" : "message", e.text);
        if (e.kind == SubEvent::State && !e.contentType.empty()) o.Set("contentType", e.contentType);
      }
      arr.Set(i++, o);
    }
    if (arr.Length()) cb.Call({arr});
  }

  void state(const std::string &s, const std::string &contentType = "") {
    if (s == lastState_) return;
    lastState_ = s;
    SubEvent ev(SubEvent::State, s);
    ev.contentType = contentType;
    push(std::move(ev));
  }

  void error(const std::string &msg) {
    if (msg == lastError_) return;
    lastError_ = msg;
    push(SubEvent(SubEvent::Error, msg));
  }

  void closeReader() {
    std::lock_guard<std::mutex> lk(readerMu_);
    dp_ring_close(&reader_);
  }

  void run() {
    pthread_setname_np(pthread_self(), "dp-shm-sub");
    bool first = true;
    while (!stopping()) {
      if (!reader_.base) {
        dp_ring_reader r;
        int rc = dp_ring_open(&r, name_.c_str(), first ? flags_ : DP_RING_FROM_OLDEST);
        if (rc != 0) {
          int e = errno;
          if (e == ENOENT || e == EAGAIN) {
            state("waiting");
            if (!sleepFor(100)) break;
          } else {
            error(r.err);
            if (!sleepFor(1000)) break;
          }
          continue;
        }
        r.cancel = &cancel_;
        {
          std::lock_guard<std::mutex> lk(readerMu_);
          reader_ = r;
        }
        first = false;
        lastError_.clear();
      }
      char ct[DP_RING_CONTENT_TYPE_CAPACITY];
      dp_ring_content_type(&reader_, ct, sizeof(ct));
      state(dp_ring_writer_alive(&reader_) ? "attached" : "waiting", ct);
      if (!waitForSpace()) break;
      CopiedFrame f;
      int rc = copyFrame(&reader_, false, 250, &f);
      if (rc == DP_RING_OK) {
        push(SubEvent(std::move(f)));
      } else if (rc == DP_RING_E_REPLACED) {
        closeReader();
      } else if (rc < 0) {
        error(reader_.err);
        closeReader();
        if (!sleepFor(1000)) break;
      }
    }
    closeReader();
  }

  std::string name_;
  int flags_ = 0;
  uint64_t queueMax_ = 4;
  Napi::ThreadSafeFunction tsfn_;
  std::thread thread_;
  std::mutex waitMu_;
  std::condition_variable waitCv_;
  bool stopping_ = false;
  std::mutex readerMu_;
  dp_ring_reader reader_{};
  volatile int cancel_ = 0;
  std::mutex queueMu_;
  std::condition_variable spaceCv_;
  std::deque<SubEvent> queue_;
  uint64_t framesQueued_ = 0;
  bool stopQueue_ = false;
  std::string lastState_;
  std::string lastError_;
};

Napi::Value MonotonicNowNs(const Napi::CallbackInfo &info) {
  return Napi::Number::New(info.Env(), double(dp_ring_clock_ns(CLOCK_MONOTONIC)));
}

Napi::Value RingNameValid(const Napi::CallbackInfo &info) {
  if (info.Length() < 1 || !info[0].IsString()) return Napi::Boolean::New(info.Env(), false);
  std::string name = info[0].As<Napi::String>();
  return Napi::Boolean::New(info.Env(), name.size() == std::strlen(name.c_str()) && dp_ring_name_valid(name.c_str()));
}

}  // namespace

void InitShm(Napi::Env env, Napi::Object exports) {
  exports.Set("RingWriter", WriterWrap::Init(env));
  exports.Set("RingReader", ReaderWrap::Init(env));
  exports.Set("RingSubscription", SubscriptionWrap::Init(env));
  exports.Set("monotonicNowNs", Napi::Function::New(env, MonotonicNowNs));
  exports.Set("ringNameValid", Napi::Function::New(env, RingNameValid));
  exports.Set("metaCapacity", Napi::Number::New(env, DP_RING_META_CAPACITY));
  exports.Set("headerSize", Napi::Number::New(env, DP_RING_HEADER_SIZE));
  exports.Set("slotHeaderSize", Napi::Number::New(env, DP_RING_SLOT_HEADER_SIZE));
}

}  // namespace devplane
