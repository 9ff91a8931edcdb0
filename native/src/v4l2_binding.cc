// Node-API surface of the camera capture: V4l2Subscription (attaches to a
// shared Capture and hands frames to JavaScript through a bounded queue, or
// writes them straight into a ring from the capture thread), and workers for
// the editor: the camera list, one camera's formats and controls.
// lib/capture/v4l2.ts wraps these in types.
#include <linux/videodev2.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "js_builder.h"
#include "js_wakeup.h"
#include "napi_options.h"
#include "v4l2_binding.h"
#include "v4l2_blocks.h"
#include "v4l2_capture.h"
#include "v4l2_device.h"
#include "v4l2_jpeg.h"
#include "v4l2_ring.h"

namespace devplane {

namespace {

using namespace options;

using namespace v4l2;

std::vector<std::string> textList(const Napi::Object &o, const char *key) {
  std::vector<std::string> out;
  if (!o.Has(key) || o.Get(key).IsUndefined()) return out;
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be an array of strings");
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value e = a.Get(i);
    if (!e.IsString()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be an array of strings");
    out.push_back(e.As<Napi::String>());
  }
  return out;
}

uint32_t parseFourcc(Napi::Env env, const std::string &s) {
  if (s.empty()) return 0;
  if (s.size() > 4) throw Napi::TypeError::New(env, "fourcc must be 1 to 4 characters, such as MJPG or YUYV");
  char c[4] = {' ', ' ', ' ', ' '};
  for (size_t i = 0; i < s.size(); i++) c[i] = s[i];
  return v4l2_fourcc(c[0], c[1], c[2], c[3]);
}

std::vector<ControlRequest> controlList(Napi::Env env, const Napi::Value &v) {
  std::vector<ControlRequest> out;
  if (v.IsUndefined() || v.IsNull()) return out;
  if (!v.IsArray()) throw Napi::TypeError::New(env, "controls must be an array of { name, value }");
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    if (!a.Get(i).IsObject()) throw Napi::TypeError::New(env, "controls must be an array of { name, value }");
    Napi::Object c = a.Get(i).As<Napi::Object>();
    ControlRequest r;
    r.name = text(c, "name", "");
    if (r.name.empty()) throw Napi::TypeError::New(env, "a control needs a name");
    Napi::Value value = c.Get("value");
    if (value.IsString()) {
      r.text = value.As<Napi::String>();
    } else if (value.IsBoolean()) {
      r.value = value.As<Napi::Boolean>() ? 1 : 0;
    } else if (value.IsNumber()) {
      double d = value.As<Napi::Number>().DoubleValue();
      if (d != double(int64_t(d))) throw Napi::TypeError::New(env, "control " + r.name + " needs a whole number");
      r.value = int64_t(d);
    } else {
      throw Napi::TypeError::New(env, "control " + r.name + " needs a number, a boolean or a menu entry");
    }
    out.push_back(r);
  }
  return out;
}

// The first argument of every call to the subscription's callback.
constexpr int kEventFrame = 0;
constexpr int kEventOther = 1;
// How many numbers a frame's row holds (their order: V4L2_FRAME_ROW in lib/native.ts).
constexpr size_t kFrameRowLength = 12;

struct BlockHint {
  std::shared_ptr<BlockPool> pool;
  size_t bytes;
};

// Frames on top of the plain builder: payloads are native memory handed to a
// Buffer, freed (or given back to their pool) once it is collected.
struct FrameJs : JsBuilder {
  using JsBuilder::JsBuilder;

  // Takes `p` (malloc'd) on success; leaves it to the caller otherwise.
  napi_value buffer(uint8_t *&p, size_t len) {
    napi_value v = nullptr;
    if (ok) {
      ok = napi_create_external_buffer(
               env, len, p, [](napi_env, void *data, void *) { std::free(data); }, nullptr, &v) == napi_ok;
      if (ok) p = nullptr;
    }
    return ok ? v : nullptr;
  }
  // The same for a block from a pool, which gets it back once collected.
  napi_value pooled(uint8_t *&p, size_t len, size_t taken, const std::shared_ptr<BlockPool> &pool) {
    napi_value v = nullptr;
    if (!ok) return nullptr;
    auto *hint = new BlockHint{pool, taken};
    ok = napi_create_external_buffer(
             env, len, p,
             [](napi_env, void *data, void *h) {
               auto *bh = static_cast<BlockHint *>(h);
               bh->pool->give(static_cast<uint8_t *>(data), bh->bytes);
               delete bh;
             },
             hint, &v) == napi_ok;
    if (ok) p = nullptr;
    else delete hint;
    return ok ? v : nullptr;
  }
};

// ---------------------------------------------------------------- sink

enum class Delivery { Every, Throttle, Snapshot, Meta, None };

struct SinkOptions {
  Delivery delivery = Delivery::Every;
  double rate = 0;       // messages per second for Throttle and Meta (0: every frame)
  uint32_t queue = 8;    // frames waiting for JavaScript before the oldest go
  bool jpeg = false;     // encode raw frames as JPEG before they reach JavaScript
  int quality = 85;
  bool ring = false;
  std::string ringName;
  RingWriterOptions ringOptions;
  bool ringKeep = false;
  bool zeroCopy = true;
};

struct Item {
  enum Kind { Frame, Running, Disconnected, Waiting, Error, Warning };
  Kind kind = Frame;
  uint8_t *data = nullptr;
  size_t bytes = 0;      // of data (what JavaScript gets)
  size_t taken = 0;      // what data was taken from `pool` for (0: malloc'd)
  std::shared_ptr<BlockPool> pool;
  bool withData = false;
  bool jpeg = false;
  uint64_t seq = 0;
  double monotonicNs = 0, realtimeMs = 0, dqbufNs = 0, encodeNs = 0;
  uint64_t frameBytes = 0;  // as the camera delivered it
  uint64_t dropped = 0;
  Negotiated fmt;
  std::vector<double> snapshots;
  bool resumed = false;
  std::string code, message;
};

struct SinkStats {
  uint64_t frames = 0;     // frames the capture handed to this sink
  uint64_t delivered = 0;  // frames queued for JavaScript
  uint64_t dropped = 0;    // frames dropped because JavaScript was behind
  uint64_t lost = 0;       // frames the camera or driver lost
  uint64_t ringFrames = 0;
  uint64_t encoded = 0;
  double encodeNs = 0;
};

class JsSink : public FrameSink {
 public:
  explicit JsSink(const SinkOptions &opts) : opts_(opts) {}

  ~JsSink() override {
    stopEncoder();
    for (Item &it : queue_) release(it);
    release(pendingRaw_);
  }

  void start(JsWakeup *waker) {
    std::lock_guard<std::mutex> lk(mu_);
    waker_ = waker;
    started_ = true;
    if (!queue_.empty()) notify();
  }

  void snapshot(double id) {
    std::lock_guard<std::mutex> lk(mu_);
    snapshots_.push_back(id);
  }

  // ---- FrameSink (capture thread)

  void prepare(const Negotiated &fmt) override {
    compressed_ = isCompressed(fmt.fourcc);
    if (!opts_.ring) return;
    std::string caps = formatCaps(fmt.fourcc, fmt.width, fmt.height, fmt.stride);
    if (ring_ && ring_->slotSize() >= fmt.sizeimage) {
      ring_->setContentType(caps);
      return;
    }
    if (ring_) {
      // Frames no longer fit: a ring of the new size replaces this one
      // under the same name, and readers reopen it.
      ring_->close(false);
      ring_.reset();
    }
    RingWriterOptions ro = opts_.ringOptions;
    ro.slotSize = std::max<uint64_t>(ro.slotSize, fmt.sizeimage);
    ro.contentType = caps;
    try {
      ring_ = std::make_unique<CaptureRing>(opts_.ringName, ro);
    } catch (const RingError &e) {
      push(stateItem(Item::Error, e.code, "cannot open ring " + opts_.ringName + ": " + e.what()));
    }
  }

  CaptureRing *zeroCopyRing() override { return opts_.zeroCopy ? ring_.get() : nullptr; }

  void zeroCopyFailed(const std::string &why) override {
    push(stateItem(Item::Warning, "ECOPY",
                   "frames are copied into ring " + opts_.ringName + ": the camera cannot write into it (" + why + ")"));
  }

  void event(const CaptureEvent &ev) override {
    Item it;
    switch (ev.kind) {
      case CaptureEvent::Running: it.kind = Item::Running; break;
      case CaptureEvent::Disconnected: it.kind = Item::Disconnected; break;
      case CaptureEvent::Waiting: it.kind = Item::Waiting; break;
      case CaptureEvent::Error: it.kind = Item::Error; break;
    }
    it.code = ev.code;
    it.message = ev.message;
    it.fmt = ev.format;
    it.resumed = ev.resumed;
    push(std::move(it));
  }

  void frame(const FrameView &f) override { deliverFrame(f, nullptr, 0, nullptr); }

  // Raw frames only: a compressed frame is a small part of its block, and
  // JavaScript, which counts only the part, would keep many blocks alive.
  bool wantsBlocks() override { return opts_.delivery == Delivery::Every && !opts_.jpeg && !compressed_; }

  bool takeBlock(const FrameView &f, uint8_t *block, size_t taken, const std::shared_ptr<BlockPool> &pool) override {
    return deliverFrame(f, block, taken, &pool);
  }

  // ---- JavaScript thread

  void cancel() {
    std::lock_guard<std::mutex> lk(mu_);
    cancelled_ = true;
  }

 private:
  // With `block`: the frame's own memory, which this sink may keep rather
  // than copy (true when it did).
  bool deliverFrame(const FrameView &f, uint8_t *block, size_t taken, const std::shared_ptr<BlockPool> *blockPool) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (cancelled_) return false;
    }
    if (!haveLostBase_) {
      lostBase_ = f.lost;
      haveLostBase_ = true;
    }
    uint64_t lost = f.lost - lostBase_;
    {
      std::lock_guard<std::mutex> lk(statsMu_);
      stats_.frames++;
      stats_.lost = lost;
    }
    if (ring_) writeRing(f, lost);
    std::vector<double> snaps;
    switch (opts_.delivery) {
      case Delivery::None: return false;
      case Delivery::Every: break;
      case Delivery::Meta:
      case Delivery::Throttle:
        if (opts_.rate > 0 && !due(f.monotonicNs)) return false;
        break;
      case Delivery::Snapshot: {
        std::lock_guard<std::mutex> lk(mu_);
        if (snapshots_.empty()) return false;
        snaps.swap(snapshots_);
        break;
      }
    }
    Item it;
    it.kind = Item::Frame;
    it.seq = f.seq;
    it.monotonicNs = double(f.monotonicNs);
    it.realtimeMs = double(f.realtimeNs / 1000) / 1000.0;
    it.dqbufNs = double(f.dqbufNs);
    it.frameBytes = f.bytes;
    it.dropped = lost;
    it.fmt = *f.format;
    it.snapshots = std::move(snaps);
    if (opts_.delivery == Delivery::Meta) {
      push(std::move(it));
      return false;
    }
    it.withData = true;
    it.bytes = f.bytes;
    bool kept = block && blockPool;
    if (kept) {
      it.data = block;
      it.taken = taken;
      it.pool = *blockPool;
    } else {
      it.data = pool_->take(f.bytes);
      it.taken = f.bytes;
      it.pool = pool_;
      if (!it.data) return false;
      if (f.bytes) std::memcpy(it.data, f.data, f.bytes);
    }
    if (opts_.jpeg && jpegEncodable(f.format->fourcc)) {
      encodeLater(std::move(it));
      return kept;
    }
    push(std::move(it));
    return kept;
  }

 public:

  // After the capture let go of this sink: nothing more reaches JavaScript.
  void finish() {
    stopEncoder();
    waker_.store(nullptr, std::memory_order_release);
    std::deque<Item> rest;
    {
      std::lock_guard<std::mutex> lk(mu_);
      cancelled_ = true;
      finished_ = true;
      rest.swap(queue_);
      queuedFrames_ = 0;
    }
    for (Item &it : rest) release(it);
    // Buffers still in JavaScript free their blocks when collected.
    pool_->close();
    if (ring_) ring_->close(!opts_.ringKeep);
    ring_.reset();
  }

  SinkStats stats() {
    std::lock_guard<std::mutex> lk(statsMu_);
    return stats_;
  }

  void deliver(Napi::Env env, Napi::Function cb) {
    std::deque<Item> batch;
    {
      std::lock_guard<std::mutex> lk(mu_);
      batch.swap(queue_);
      queuedFrames_ = 0;
      // Without an environment the function is being torn down (a worker
      // ending): there is nobody to deliver to.
      if (finished_ || env == nullptr || cb.IsEmpty()) {
        for (Item &it : batch) release(it);
        return;
      }
    }
    napi_value undefined;
    napi_get_undefined(env, &undefined);
    for (Item &it : batch) {
      {
        // The callback may have stopped the subscription.
        std::lock_guard<std::mutex> lk(mu_);
        if (finished_) break;
      }
      FrameJs js(env);
      napi_value args[4] = {undefined, undefined, undefined, undefined};
      size_t argc = 2;
      if (it.kind == Item::Frame) {
        // One call per frame with plain arguments: its numbers in a reused
        // Float64Array (V4L2_FRAME_ROW), then the bytes and any snapshot ids.
        const double row[kFrameRowLength] = {double(it.seq),
                                             it.monotonicNs,
                                             it.realtimeMs,
                                             it.dqbufNs,
                                             double(it.frameBytes),
                                             double(it.dropped),
                                             double(it.fmt.width),
                                             double(it.fmt.height),
                                             double(it.fmt.stride),
                                             double(it.fmt.fourcc),
                                             it.jpeg ? 1.0 : 0.0,
                                             it.jpeg ? it.encodeNs : 0.0};
        args[0] = js.number(kEventFrame);
        args[1] = js.float64(row, kFrameRowLength, scratch_.get(env, kFrameRowLength));
        if (it.withData) args[2] = it.pool ? js.pooled(it.data, it.bytes, it.taken, it.pool) : js.buffer(it.data, it.bytes);
        if (!it.snapshots.empty()) {
          args[3] = js.array(it.snapshots.size());
          for (uint32_t k = 0; k < it.snapshots.size(); k++) js.setIndex(args[3], k, js.number(it.snapshots[k]));
        }
        argc = 4;
      } else {
        args[0] = js.number(kEventOther);
        args[1] = eventObject(js, it);
      }
      // JavaScript is shutting down (a worker ending): what was not handed
      // over is freed below.
      if (!js.ok) continue;
      napi_value result;
      // An exception the callback throws stays pending, and Node reports it
      // as uncaught; the rest of the batch is not delivered then.
      if (napi_call_function(env, undefined, cb, argc, args, &result) != napi_ok) break;
    }
    // Blocks not handed to JavaScript go back to their pool.
    for (Item &it : batch) release(it);
  }

  // Keeps the caller's Float64Array for frame rows.
  void setScratch(napi_env env, napi_value typedArray) { scratch_.set(env, typedArray); }
  // On the JavaScript thread, once nothing more is delivered.
  void dropScratch(napi_env env) { scratch_.drop(env); }

 private:
  void release(Item &it) {
    if (it.data) {
      if (it.pool) it.pool->give(it.data, it.taken);
      else std::free(it.data);
    }
    it.data = nullptr;
  }

  // A state change, error or warning: rare, so an object built in place.
  static napi_value eventObject(FrameJs &js, const Item &it) {
    napi_value o = js.object();
    switch (it.kind) {
      case Item::Frame:  // delivered as a row, not an object
        break;
      case Item::Running:
        js.set(o, "type", js.string("state"));
        js.set(o, "state", js.string("running"));
        js.set(o, "resumed", js.boolean(it.resumed));
        js.set(o, "path", js.string(it.fmt.path));
        js.set(o, "card", js.string(it.fmt.card));
        js.set(o, "busInfo", js.string(it.fmt.busInfo));
        js.set(o, "format", js.string(formatName(it.fmt.fourcc)));
        js.set(o, "fourcc", js.string(fourccText(it.fmt.fourcc)));
        js.set(o, "width", js.number(it.fmt.width));
        js.set(o, "height", js.number(it.fmt.height));
        js.set(o, "stride", js.number(it.fmt.stride));
        js.set(o, "sizeimage", js.number(it.fmt.sizeimage));
        js.set(o, "fpsNumerator", js.number(it.fmt.tpfDen));
        js.set(o, "fpsDenominator", js.number(it.fmt.tpfNum));
        js.set(o, "memory", js.string(it.fmt.memory));
        js.set(o, "buffers", js.number(it.fmt.buffers));
        break;
      case Item::Disconnected:
      case Item::Waiting:
        js.set(o, "type", js.string("state"));
        js.set(o, "state", js.string(it.kind == Item::Waiting ? "waiting" : "disconnected"));
        js.set(o, "code", js.string(it.code));
        js.set(o, "message", js.string(it.message));
        break;
      case Item::Error:
      case Item::Warning:
        js.set(o, "type", js.string(it.kind == Item::Error ? "error" : "warning"));
        js.set(o, "code", js.string(it.code));
        js.set(o, "message", js.string(it.message));
        break;
    }
    return o;
  }

  static Item stateItem(Item::Kind kind, const std::string &code, const std::string &message) {
    Item it;
    it.kind = kind;
    it.code = code;
    it.message = message;
    return it;
  }

  // At most `rate` frames a second, spaced by the frames' own timestamps.
  bool due(uint64_t mono) {
    const uint64_t period = uint64_t(1e9 / opts_.rate);
    // Half a millisecond of slack: a frame exactly one period later must not
    // lose to rounding in its timestamp.
    if (nextDueNs_ && mono + 500000 < nextDueNs_) return false;
    nextDueNs_ = !nextDueNs_ || mono > nextDueNs_ + period ? mono + period : nextDueNs_ + period;
    return true;
  }

  void notify() {
    if (JsWakeup *w = waker_.load(std::memory_order_acquire)) w->wake();
  }

  void push(Item &&it) {
    uint64_t droppedNow = 0;
    bool isFrame = false;
    bool wake = false;
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (finished_) {
        release(it);
        return;
      }
      bool wasEmpty = queue_.empty();
      if (it.kind == Item::Frame) {
        // JavaScript is behind: the oldest frames go, and the next ones say
        // how many. Snapshots answer a message, so they are kept.
        for (auto q = queue_.begin(); q != queue_.end() && queuedFrames_ >= opts_.queue;) {
          if (q->kind != Item::Frame || !q->snapshots.empty()) {
            ++q;
            continue;
          }
          release(*q);
          q = queue_.erase(q);
          queuedFrames_--;
          droppedNow++;
        }
        dropped_ += droppedNow;
        // The frames dropped were older than every frame still queued, so
        // those count them too: each frame's "dropped" covers all before it.
        if (droppedNow)
          for (Item &q : queue_)
            if (q.kind == Item::Frame && q.snapshots.empty()) q.dropped += droppedNow;
        // Frames lost before this one: by the camera (set by the caller) and here.
        it.dropped += dropped_;
        queuedFrames_++;
      }
      isFrame = it.kind == Item::Frame;
      {
        // Counted before JavaScript can see the frame, so stats() never lags what it got.
        std::lock_guard<std::mutex> sl(statsMu_);
        stats_.dropped += droppedNow;
        if (isFrame) stats_.delivered++;
      }
      queue_.push_back(std::move(it));
      wake = wasEmpty && started_;
    }
    // Outside the lock: JavaScript, woken by this, takes the same lock first
    // thing, and would otherwise sleep on it until this thread let go.
    if (wake) notify();
  }

  void writeRing(const FrameView &f, uint64_t lost) {
    std::string meta;
    meta.reserve(320);
    meta += "{\"frame\":{\"seq\":";
    appendNumber(&meta, "%.0f", double(f.seq));
    meta += ",\"ts\":";
    appendNumber(&meta, "%.3f", double(f.realtimeNs / 1000) / 1000.0);
    meta += ",\"monotonicNs\":";
    appendNumber(&meta, "%.0f", double(f.monotonicNs));
    meta += ",\"width\":" + std::to_string(f.format->width) + ",\"height\":" + std::to_string(f.format->height) +
            ",\"format\":\"" + formatName(f.format->fourcc) + "\",\"stride\":" + std::to_string(f.format->stride) +
            ",\"bytes\":" + std::to_string(f.bytes) + ",\"dropped\":" + std::to_string(lost) +
            "},\"capture\":{\"dqbufNs\":";
    appendNumber(&meta, "%.0f", double(f.dqbufNs));
    meta += ",\"commitNs\":";
    // When the frame is published, give or take the commit itself: DQBUF to
    // here is the capture's own latency, the rest is the reader's wake-up.
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    appendNumber(&meta, "%.0f", double(uint64_t(now.tv_sec) * 1000000000ull + uint64_t(now.tv_nsec)));
    meta += "}}";
    try {
      if (f.ring == ring_.get() && ring_->owns(f.data, f.ringSeq))
        ring_->commit(f.ringSeq, f.bytes, meta, f.realtimeNs, f.monotonicNs);
      else
        ring_->write(f.data, f.bytes, meta, f.realtimeNs, f.monotonicNs);
    } catch (const RingError &e) {
      // Reported once per distinct failure; the capture itself goes on.
      if (e.what() == ringError_) return;
      ringError_ = e.what();
      push(stateItem(Item::Error, e.code, "writing to ring " + opts_.ringName + " failed: " + e.what()));
      return;
    }
    std::lock_guard<std::mutex> lk(statsMu_);
    stats_.ringFrames++;
  }

  // Encoding takes longer than a frame at high rates: it runs on a thread of
  // its own, which takes the newest frame whenever it is free.
  void encodeLater(Item &&it) {
    std::unique_lock<std::mutex> lk(encMu_);
    if (!encoder_.joinable()) encoder_ = std::thread([this] { encodeLoop(); });
    if (pendingRaw_.data) {
      release(pendingRaw_);
      std::lock_guard<std::mutex> ql(mu_);
      dropped_++;
      std::lock_guard<std::mutex> sl(statsMu_);
      stats_.dropped++;
    }
    // Snapshots already asked for stay asked for.
    if (!pendingRaw_.snapshots.empty()) it.snapshots.insert(it.snapshots.end(), pendingRaw_.snapshots.begin(), pendingRaw_.snapshots.end());
    pendingRaw_ = std::move(it);
    havePending_ = true;
    encCv_.notify_one();
  }

  void encodeLoop() {
    pthread_setname_np(pthread_self(), "dp-v4l2-jpeg");
    JpegEncoder encoder;
    for (;;) {
      Item it;
      {
        std::unique_lock<std::mutex> lk(encMu_);
        encCv_.wait(lk, [this] { return encStop_ || havePending_; });
        if (encStop_) return;
        it = std::move(pendingRaw_);
        pendingRaw_ = Item{};
        havePending_ = false;
      }
      auto t0 = std::chrono::steady_clock::now();
      uint8_t *out = nullptr;
      size_t outLen = 0;
      std::string err;
      bool ok = encoder.encode(it.fmt.fourcc, it.fmt.width, it.fmt.height, it.fmt.stride, it.data, it.bytes,
                               opts_.quality, &out, &outLen, &err);
      double ns = double(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
      release(it);
      if (!ok) {
        if (err != encodeError_) {
          encodeError_ = err;
          push(stateItem(Item::Error, "EJPEG", err));
        }
        continue;
      }
      it.data = out;
      it.taken = 0;
      it.pool.reset();
      it.bytes = outLen;
      it.jpeg = true;
      it.encodeNs = ns;
      {
        std::lock_guard<std::mutex> lk(statsMu_);
        stats_.encoded++;
        stats_.encodeNs += ns;
      }
      push(std::move(it));
    }
  }

  void stopEncoder() {
    {
      std::lock_guard<std::mutex> lk(encMu_);
      encStop_ = true;
    }
    encCv_.notify_all();
    if (encoder_.joinable()) encoder_.join();
  }

  SinkOptions opts_;
  std::shared_ptr<BlockPool> pool_ = std::make_shared<BlockPool>();
  ScratchRow scratch_;  // JavaScript thread only
  std::atomic<JsWakeup *> waker_{nullptr};
  std::unique_ptr<CaptureRing> ring_;  // capture thread, then finish()
  std::string ringError_;
  bool compressed_ = false;  // capture thread
  bool haveLostBase_ = false;
  uint64_t lostBase_ = 0;
  uint64_t nextDueNs_ = 0;

  std::mutex mu_;
  std::deque<Item> queue_;
  uint64_t queuedFrames_ = 0;
  uint64_t dropped_ = 0;
  std::vector<double> snapshots_;
  bool started_ = false;
  bool cancelled_ = false;
  bool finished_ = false;

  std::mutex encMu_;
  std::condition_variable encCv_;
  std::thread encoder_;
  Item pendingRaw_;
  bool havePending_ = false;
  bool encStop_ = false;
  std::string encodeError_;

  std::mutex statsMu_;
  SinkStats stats_;
};

// ---------------------------------------------------------------- workers

napi_value controlToJs(JsBuilder &js, const ControlInfo &c) {
  napi_value o = js.object();
  js.set(o, "id", js.number(c.id));
  js.set(o, "name", js.string(c.name));
  js.set(o, "label", js.string(c.label));
  js.set(o, "type", js.string(c.typeName));
  js.set(o, "min", js.number(double(c.minimum)));
  js.set(o, "max", js.number(double(c.maximum)));
  js.set(o, "step", js.number(double(c.step)));
  js.set(o, "default", js.number(double(c.defaultValue)));
  if (c.hasValue) js.set(o, "value", js.number(double(c.value)));
  js.set(o, "inactive", js.boolean(c.inactive));
  js.set(o, "readOnly", js.boolean(c.readOnly));
  if (!c.menu.empty()) {
    napi_value m = js.array(c.menu.size());
    for (uint32_t i = 0; i < c.menu.size(); i++) {
      napi_value e = js.object();
      js.set(e, "value", js.number(double(c.menu[i].first)));
      js.set(e, "label", js.string(c.menu[i].second));
      js.setIndex(m, i, e);
    }
    js.set(o, "menu", m);
  }
  return o;
}

napi_value controlResultToJs(JsBuilder &js, const ControlResult &r) {
  napi_value o = js.object();
  js.set(o, "name", js.string(r.name));
  js.set(o, "id", js.number(r.id));
  js.set(o, "ok", js.boolean(r.ok));
  if (r.ok) js.set(o, "value", js.number(double(r.value)));
  if (!r.ok) {
    js.set(o, "code", js.string(r.code));
    js.set(o, "message", js.string(r.message));
  }
  return o;
}

// Settles a promise from a worker, through the plain C API like the sink.
class Worker : public Napi::AsyncWorker {
 public:
  explicit Worker(Napi::Env env) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void OnError(const Napi::Error &e) override {
    Napi::Error err = codedError(Env(), code_.empty() ? "EIO" : code_, e.Message());
    deferred_.Reject(err.Value());
  }
  void resolve(napi_value v) { deferred_.Resolve(Napi::Value(Env(), v)); }
  Napi::Promise::Deferred deferred_;
  std::string code_;
};

class DescribeWorker : public Worker {
 public:
  DescribeWorker(Napi::Env env, std::string path, OpenOptions opts) : Worker(env), path_(std::move(path)), opts_(std::move(opts)) {}

  void Execute() override {
    OpenResult r = openDevice(path_, opts_);
    if (r.fd < 0) {
      code_ = r.code;
      SetError(r.message);
      return;
    }
    id_ = r.id;
    formats_ = enumerateFormats(r.fd);
    controls_ = listControls(r.fd);
    v4l2_format f{};
    f.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    if (xioctl(r.fd, VIDIOC_G_FMT, &f) == 0) current_ = f.fmt.pix;
    ::close(r.fd);
    links_ = stableLinks(id_.rdev);
  }

  void OnOK() override {
    JsBuilder js(Env());
    napi_value o = js.object();
    js.set(o, "path", js.string(path_));
    js.set(o, "driver", js.string(id_.driver));
    js.set(o, "card", js.string(id_.card));
    js.set(o, "busInfo", js.string(id_.busInfo));
    napi_value links = js.array(links_.size());
    for (uint32_t i = 0; i < links_.size(); i++) js.setIndex(links, i, js.string(links_[i]));
    js.set(o, "links", links);
    napi_value cur = js.object();
    js.set(cur, "fourcc", js.string(fourccText(current_.pixelformat)));
    js.set(cur, "width", js.number(current_.width));
    js.set(cur, "height", js.number(current_.height));
    js.set(o, "current", cur);
    napi_value formats = js.array(formats_.size());
    for (uint32_t i = 0; i < formats_.size(); i++) {
      const FormatInfo &fi = formats_[i];
      napi_value fo = js.object();
      js.set(fo, "fourcc", js.string(fourccText(fi.fourcc)));
      js.set(fo, "name", js.string(formatName(fi.fourcc)));
      js.set(fo, "description", js.string(fi.description));
      js.set(fo, "compressed", js.boolean(fi.compressed));
      js.set(fo, "emulated", js.boolean(fi.emulated));
      napi_value sizes = js.array(fi.sizes.size());
      for (uint32_t k = 0; k < fi.sizes.size(); k++) {
        const FrameSize &s = fi.sizes[k];
        napi_value so = js.object();
        js.set(so, "width", js.number(s.width));
        js.set(so, "height", js.number(s.height));
        if (s.stepwise) {
          napi_value step = js.object();
          js.set(step, "minWidth", js.number(s.minWidth));
          js.set(step, "maxWidth", js.number(s.maxWidth));
          js.set(step, "stepWidth", js.number(s.stepWidth));
          js.set(step, "minHeight", js.number(s.minHeight));
          js.set(step, "maxHeight", js.number(s.maxHeight));
          js.set(step, "stepHeight", js.number(s.stepHeight));
          js.set(so, "stepwise", step);
        }
        napi_value ivs = js.array(s.intervals.size());
        for (uint32_t j = 0; j < s.intervals.size(); j++) {
          napi_value iv = js.array(2);
          js.setIndex(iv, 0, js.number(s.intervals[j].numerator));
          js.setIndex(iv, 1, js.number(s.intervals[j].denominator));
          js.setIndex(ivs, j, iv);
        }
        js.set(so, "intervals", ivs);
        if (s.intervalRange) {
          napi_value range = js.object();
          js.set(range, "min", js.number(double(s.minInterval.numerator) / std::max(1u, s.minInterval.denominator)));
          js.set(range, "max", js.number(double(s.maxInterval.numerator) / std::max(1u, s.maxInterval.denominator)));
          js.set(so, "intervalRange", range);
        }
        js.setIndex(sizes, k, so);
      }
      js.set(fo, "sizes", sizes);
      js.setIndex(formats, i, fo);
    }
    js.set(o, "formats", formats);
    napi_value controls = js.array(controls_.size());
    for (uint32_t i = 0; i < controls_.size(); i++) js.setIndex(controls, i, controlToJs(js, controls_[i]));
    js.set(o, "controls", controls);
    if (!js.ok) {
      deferred_.Reject(Napi::Error::New(Env(), "cannot build the camera description").Value());
      return;
    }
    resolve(o);
  }

 private:
  std::string path_;
  OpenOptions opts_;
  Identity id_;
  std::vector<FormatInfo> formats_;
  std::vector<ControlInfo> controls_;
  std::vector<std::string> links_;
  v4l2_pix_format current_{};
};

struct ListedCamera {
  std::string path;
  bool ok = false;
  Identity id;
  std::vector<std::string> links;
  std::string code, message;
};

class ListWorker : public Worker {
 public:
  ListWorker(Napi::Env env, OpenOptions opts) : Worker(env), opts_(std::move(opts)) {}

  void Execute() override {
    OpenOptions any = opts_;
    any.requireCapture = false;
    for (const std::string &p : candidatePaths(opts_.extraPaths)) {
      ListedCamera c;
      c.path = p;
      OpenResult r = openDevice(p, any);
      if (r.fd >= 0) {
        ::close(r.fd);
        c.ok = true;
        c.id = r.id;
        c.links = stableLinks(r.id.rdev);
      } else {
        if (r.code == "ENODEV") continue;  // listed a moment ago, gone now
        c.code = r.code;
        c.message = r.message;
      }
      cameras_.push_back(std::move(c));
    }
  }

  void OnOK() override {
    JsBuilder js(Env());
    napi_value arr = js.array(cameras_.size());
    for (uint32_t i = 0; i < cameras_.size(); i++) {
      const ListedCamera &c = cameras_[i];
      napi_value o = js.object();
      js.set(o, "path", js.string(c.path));
      if (c.ok) {
        js.set(o, "driver", js.string(c.id.driver));
        js.set(o, "card", js.string(c.id.card));
        js.set(o, "busInfo", js.string(c.id.busInfo));
        js.set(o, "capture", js.boolean(c.id.capture));
        js.set(o, "meta", js.boolean(c.id.meta));
        napi_value links = js.array(c.links.size());
        for (uint32_t k = 0; k < c.links.size(); k++) js.setIndex(links, k, js.string(c.links[k]));
        js.set(o, "links", links);
      } else {
        js.set(o, "code", js.string(c.code));
        js.set(o, "error", js.string(c.message));
      }
      js.setIndex(arr, i, o);
    }
    if (!js.ok) {
      deferred_.Reject(Napi::Error::New(Env(), "cannot build the camera list").Value());
      return;
    }
    resolve(arr);
  }

 private:
  OpenOptions opts_;
  std::vector<ListedCamera> cameras_;
};

class ControlsWorker : public Worker {
 public:
  // With requests: sets them; without: lists the controls.
  ControlsWorker(Napi::Env env, std::shared_ptr<Capture> capture, std::vector<ControlRequest> requests, bool set)
      : Worker(env), capture_(std::move(capture)), requests_(std::move(requests)), set_(set) {}

  void Execute() override {
    if (set_) results_ = capture_->setControls(requests_, &applied_);
    else applied_ = capture_->controls(&list_);
  }

  void OnOK() override {
    JsBuilder js(Env());
    napi_value o = js.object();
    js.set(o, "open", js.boolean(applied_));
    if (set_) {
      napi_value arr = js.array(results_.size());
      for (uint32_t i = 0; i < results_.size(); i++) js.setIndex(arr, i, controlResultToJs(js, results_[i]));
      js.set(o, "results", arr);
    } else {
      napi_value arr = js.array(list_.size());
      for (uint32_t i = 0; i < list_.size(); i++) js.setIndex(arr, i, controlToJs(js, list_[i]));
      js.set(o, "controls", arr);
    }
    if (!js.ok) {
      deferred_.Reject(Napi::Error::New(Env(), "cannot build the control list").Value());
      return;
    }
    resolve(o);
  }

 private:
  std::shared_ptr<Capture> capture_;
  std::vector<ControlRequest> requests_;
  bool set_;
  bool applied_ = false;
  std::vector<ControlResult> results_;
  std::vector<ControlInfo> list_;
};

OpenOptions openOptions(const Napi::Value &v) {
  OpenOptions oo;
  if (!v.IsObject()) return oo;
  Napi::Object o = v.As<Napi::Object>();
  oo.extraPaths = textList(o, "extraPaths");
  oo.procRoot = text(o, "procRoot", "/proc");
  return oo;
}

// ---------------------------------------------------------------- subscription

class SubscriptionWrap : public Napi::ObjectWrap<SubscriptionWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "V4l2Subscription",
                       {InstanceMethod<&SubscriptionWrap::Stop>("stop"),
                        InstanceMethod<&SubscriptionWrap::Stats>("stats"),
                        InstanceMethod<&SubscriptionWrap::Snapshot>("snapshot"),
                        InstanceMethod<&SubscriptionWrap::SetControls>("setControls"),
                        InstanceMethod<&SubscriptionWrap::Controls>("controls")});
  }

  // V4l2Subscription(options, onEvent(kind, ...)): see NativeV4l2Handler in lib/native.ts
  SubscriptionWrap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<SubscriptionWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction())
      throw Napi::TypeError::New(env, "V4l2Subscription(options, callback) needs an options object and a function");
    Napi::Object o = info[0].As<Napi::Object>();
    CaptureConfig cfg;
    cfg.device = text(o, "device", "");
    if (cfg.device.empty() || cfg.device.size() > 4096 || cfg.device[0] != '/')
      throw Napi::TypeError::New(env, "device must be an absolute path such as /dev/video0");
    cfg.fourcc = parseFourcc(env, text(o, "fourcc", ""));
    cfg.width = wholeNumber(o, "width", 0, 65535, 0);
    cfg.height = wholeNumber(o, "height", 0, 65535, 0);
    if ((cfg.width == 0) != (cfg.height == 0)) throw Napi::TypeError::New(env, "give both width and height, or neither");
    // Frame rate as a fraction (30000/1001 for NTSC rates): the time per frame is its inverse.
    cfg.tpfDen = wholeNumber(o, "fpsNumerator", 0, 1000000, 0);
    cfg.tpfNum = wholeNumber(o, "fpsDenominator", 0, 1000000, cfg.tpfDen ? 1 : 0);
    cfg.buffers = wholeNumber(o, "buffers", 2, 32, 4);
    cfg.extraPaths = textList(o, "extraPaths");
    cfg.procRoot = text(o, "procRoot", "/proc");
    std::vector<ControlRequest> controls = controlList(env, o.Get("controls"));

    SinkOptions opts;
    std::string delivery = text(o, "delivery", "every");
    if (delivery == "every") opts.delivery = Delivery::Every;
    else if (delivery == "throttle") opts.delivery = Delivery::Throttle;
    else if (delivery == "snapshot") opts.delivery = Delivery::Snapshot;
    else if (delivery == "meta") opts.delivery = Delivery::Meta;
    else if (delivery == "none") opts.delivery = Delivery::None;
    else throw Napi::TypeError::New(env, "delivery must be every, throttle, snapshot, meta or none");
    opts.rate = number(o, "rate", 0, 1000, 0);
    if (opts.delivery == Delivery::Throttle && opts.rate <= 0)
      throw Napi::TypeError::New(env, "throttled delivery needs a rate above 0");
    opts.queue = wholeNumber(o, "queue", 1, 1000, 8);
    opts.jpeg = flag(o, "jpeg", false);
    opts.quality = int(wholeNumber(o, "quality", 1, 100, 85));
    if (o.Has("ring") && o.Get("ring").IsObject()) {
      Napi::Object r = o.Get("ring").As<Napi::Object>();
      opts.ring = true;
      opts.ringName = text(r, "name", "");
      try {
        validateRingName(opts.ringName);
      } catch (const RingError &e) {
        throw codedError(env, e.code, e.what());
      }
      opts.ringOptions.slots = wholeNumber(r, "slots", 1, 4096, 8);
      opts.ringOptions.slotSize = wholeNumber(r, "slotSize", 0, 0x7fffffff, 0);
      opts.ringOptions.mode = wholeNumber(r, "mode", 0, 0777, 0600);
      if (r.Has("maxBytes") && r.Get("maxBytes").IsNumber())
        opts.ringOptions.maxBytes = uint64_t(r.Get("maxBytes").As<Napi::Number>().DoubleValue());
      opts.ringKeep = flag(r, "keep", false);
      opts.zeroCopy = flag(r, "zeroCopy", true);
    }

    sink_ = std::make_shared<JsSink>(opts);
    if (o.Has("rows") && o.Get("rows").IsTypedArray()) sink_->setScratch(env, o.Get("rows"));
    // The sink lives until the wake-up handle is closed, however late that is.
    waker_ = JsWakeup::create(env, info[1], "devplane-v4l2-capture", &SubscriptionWrap::OnWake, sink_.get(), sink_);
    if (!waker_) throw codedError(env, "EIO", "cannot set up the delivery of frames to JavaScript");
    try {
      capture_ = subscribeCapture(cfg, sink_, controls);
      sink_->start(waker_);
    } catch (const std::exception &e) {
      sink_->finish();
      waker_->close();
      waker_ = nullptr;
      throw codedError(env, "EIO", e.what());
    }
    env_ = env;
    napi_add_env_cleanup_hook(env, &SubscriptionWrap::Cleanup, this);
  }

  ~SubscriptionWrap() override { shutdown(); }

 private:
  static void Cleanup(void *arg) { static_cast<SubscriptionWrap *>(arg)->shutdown(); }
  static void OnWake(napi_env env, napi_value cb, void *sink) {
    static_cast<JsSink *>(sink)->deliver(Napi::Env(env), Napi::Function(env, cb));
  }

  void shutdown() {
    if (!capture_) return;
    sink_->cancel();
    releaseCapture(capture_, sink_);
    capture_.reset();
    sink_->finish();
    sink_->dropScratch(env_);
    // No thread wakes JavaScript any more: the capture let go of the sink
    // and finish() joined its encoder.
    waker_->close();
    waker_ = nullptr;
    napi_remove_env_cleanup_hook(env_, &SubscriptionWrap::Cleanup, this);
  }

  Napi::Value Stop(const Napi::CallbackInfo &info) {
    shutdown();
    return info.Env().Undefined();
  }

  Napi::Value Snapshot(const Napi::CallbackInfo &info) {
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "snapshot(id) needs a number");
    sink_->snapshot(info[0].As<Napi::Number>().DoubleValue());
    return info.Env().Undefined();
  }

  Napi::Value SetControls(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!capture_) throw codedError(env, "ECLOSED", "the capture is stopped");
    std::vector<ControlRequest> reqs = controlList(env, info.Length() ? info[0] : env.Undefined());
    auto *w = new ControlsWorker(env, capture_, std::move(reqs), true);
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  }

  Napi::Value Controls(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!capture_) throw codedError(env, "ECLOSED", "the capture is stopped");
    auto *w = new ControlsWorker(env, capture_, {}, false);
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  }

  Napi::Value Stats(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    SinkStats s = sink_->stats();
    Napi::Object o = Napi::Object::New(env);
    o.Set("frames", Napi::Number::New(env, double(s.frames)));
    o.Set("delivered", Napi::Number::New(env, double(s.delivered)));
    o.Set("dropped", Napi::Number::New(env, double(s.dropped)));
    o.Set("lost", Napi::Number::New(env, double(s.lost)));
    o.Set("ringFrames", Napi::Number::New(env, double(s.ringFrames)));
    o.Set("encoded", Napi::Number::New(env, double(s.encoded)));
    o.Set("encodeMs", Napi::Number::New(env, s.encoded ? s.encodeNs / double(s.encoded) / 1e6 : 0));
    if (capture_) {
      Capture::Stats c = capture_->stats();
      o.Set("captured", Napi::Number::New(env, double(c.frames)));
      o.Set("errors", Napi::Number::New(env, double(c.errors)));
      o.Set("restarts", Napi::Number::New(env, double(c.restarts)));
      o.Set("memory", Napi::String::New(env, c.memory));
      o.Set("poolHits", Napi::Number::New(env, double(c.poolHits)));
      o.Set("poolMisses", Napi::Number::New(env, double(c.poolMisses)));
      o.Set("threadId", Napi::Number::New(env, c.threadId));
    }
    return o;
  }

  std::shared_ptr<JsSink> sink_;
  std::shared_ptr<Capture> capture_;
  JsWakeup *waker_ = nullptr;
  napi_env env_ = nullptr;
};

Napi::Value Describe(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "v4l2Describe(path) needs a device path");
  std::string path = info[0].As<Napi::String>();
  if (path.empty() || path[0] != '/' || path.size() != std::strlen(path.c_str()))
    throw Napi::TypeError::New(env, "device must be an absolute path such as /dev/video0");
  auto *w = new DescribeWorker(env, path, openOptions(info.Length() > 1 ? info[1] : env.Undefined()));
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

Napi::Value List(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  auto *w = new ListWorker(env, openOptions(info.Length() > 0 ? info[0] : env.Undefined()));
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

Napi::Value ActiveCaptures(const Napi::CallbackInfo &info) {
  return Napi::Number::New(info.Env(), double(activeCaptures()));
}

Napi::Value JpegStatus(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string err;
  bool ok = jpegAvailable(&err);
  Napi::Object o = Napi::Object::New(env);
  o.Set("available", Napi::Boolean::New(env, ok));
  o.Set("library", Napi::String::New(env, jpegLibraryName()));
  if (!ok) o.Set("error", Napi::String::New(env, err));
  return o;
}

}  // namespace

void InitV4l2(Napi::Env env, Napi::Object exports) {
  exports.Set("V4l2Subscription", SubscriptionWrap::Init(env));
  exports.Set("v4l2Describe", Napi::Function::New(env, Describe));
  exports.Set("v4l2List", Napi::Function::New(env, List));
  exports.Set("v4l2ActiveCaptures", Napi::Function::New(env, ActiveCaptures));
  exports.Set("v4l2JpegStatus", Napi::Function::New(env, JpegStatus));
}

}  // namespace devplane
