// Node-API surface of the microphone capture: AlsaSubscription (attaches to a
// shared Capture and hands its chunks to JavaScript through a bounded queue,
// or writes them straight into a ring), and alsaDevices() for the editor's
// device list. lib/capture/alsa.ts wraps these in types.
#include <dirent.h>

#include <algorithm>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <fstream>
#include <memory>
#include <mutex>

#include "alsa_binding.h"
#include "alsa_capture.h"
#include "alsa_loader.h"
#include "js_builder.h"
#include "napi_options.h"
#include "shm_writer.h"

namespace devplane {

namespace {

using namespace options;

// The ring's per-frame metadata, as shm-publish writes a message's msg.audio.
std::string audioMetaJson(const CaptureConfig &cfg, const double *row, double overruns) {
  std::string s;
  s.reserve(256 + cfg.channels * 24);
  s += "{\"audio\":{\"seq\":";
  appendNumber(&s, "%.0f", row[kSeq]);
  s += ",\"ts\":";
  appendNumber(&s, "%.3f", row[kRealtimeMs]);
  s += ",\"monotonicNs\":";
  appendNumber(&s, "%.0f", row[kMonotonicNs]);
  s += ",\"rate\":" + std::to_string(cfg.rate) + ",\"channels\":" + std::to_string(cfg.channels) +
       ",\"format\":\"" + sampleFormatName(cfg.format) + "\",\"frames\":" + std::to_string(cfg.chunkFrames) +
       ",\"level\":{\"rmsDbfs\":[";
  for (unsigned c = 0; c < cfg.channels; c++) {
    if (c) s += ',';
    appendNumber(&s, "%.2f", row[kLevels + c]);
  }
  s += "],\"peakDbfs\":[";
  for (unsigned c = 0; c < cfg.channels; c++) {
    if (c) s += ',';
    appendNumber(&s, "%.2f", row[kLevels + cfg.channels + c]);
  }
  s += "]},\"overruns\":";
  appendNumber(&s, "%.0f", overruns);
  s += "}}";
  return s;
}

// ---------------------------------------------------------------- sink

// The first argument of every call to the subscription's callback.
constexpr int kEventChunks = 0;
constexpr int kEventRunning = 1;
constexpr int kEventDisconnected = 2;
constexpr int kEventError = 3;


// Where a delivery's samples go in JavaScript: slices of a shared block
// (an ArrayBuffer), as Node's own small Buffers are slices of its pool. A
// Buffer made from native memory costs an allocation, a backing store and a
// prototype change each: at 100 deliveries a second, a quarter of the
// JavaScript thread's time, and the backing stores kept V8's background
// threads busy too. The block lives as long as any slice of it does.
class PayloadSlab {
 public:
  // Room for `bytes` at an 8-byte boundary, in the current block or a new one.
  bool place(napi_env env, size_t bytes, napi_value *block, size_t *offset, uint8_t **at) {
    void *data = nullptr;
    size_t length = 0;
    if (ref_) {
      bool detached = true;
      // A block transferred elsewhere (postMessage) must not be written to again.
      if (napi_get_reference_value(env, ref_, block) != napi_ok || !*block ||
          napi_is_detached_arraybuffer(env, *block, &detached) != napi_ok || detached ||
          napi_get_arraybuffer_info(env, *block, &data, &length) != napi_ok || used_ + bytes > length) {
        drop(env);
      }
    }
    if (!ref_) {
      length = std::max(kBytes, bytes);
      if (napi_create_arraybuffer(env, length, &data, block) != napi_ok) return false;
      if (napi_create_reference(env, *block, 1, &ref_) != napi_ok) {
        ref_ = nullptr;
        return false;
      }
      used_ = 0;
    }
    *offset = used_;
    *at = static_cast<uint8_t *>(data) + used_;
    used_ = (used_ + bytes + 7) & ~size_t(7);
    return true;
  }

  void drop(napi_env env) {
    if (ref_) napi_delete_reference(env, ref_);
    ref_ = nullptr;
    used_ = 0;
  }

 private:
  static constexpr size_t kBytes = 64 * 1024;
  napi_ref ref_ = nullptr;
  size_t used_ = 0;
};

struct SinkOptions {
  bool chunks = true;   // hand chunks to JavaScript
  bool payload = true;  // with their samples (false: levels only)
  uint32_t queue = 100; // chunks queued for JavaScript before the oldest go
  // Chunks count against the queue until JavaScript acknowledges them, not
  // only until they are handed over: Node-RED passes messages on later, in
  // the event loop, and a flow slower than the microphone must be seen as such.
  bool ack = false;
};

struct QueueItem {
  enum Kind { Chunks, State };
  Kind kind = Chunks;
  uint8_t *data = nullptr;  // a block of `pool`
  std::shared_ptr<BlockPool> pool;
  size_t chunkBytes = 0;
  uint32_t count = 0;
  std::vector<double> info;
  uint64_t dropped = 0;
  CaptureEvent ev;
};

struct SinkStats {
  uint64_t chunks = 0;
  uint64_t dropped = 0;
  uint64_t overruns = 0;
  uint64_t ringFrames = 0;
  std::vector<double> rms, peak;
};

void release(QueueItem &it) {
  if (it.pool) it.pool->give(it.data);
  it.data = nullptr;
}

class JsSink : public CaptureSink {
 public:
  JsSink(const CaptureConfig &cfg, const SinkOptions &opts, std::unique_ptr<RingWriter> ring)
      : cfg_(cfg), opts_(opts), ring_(std::move(ring)) {}

  ~JsSink() override {
    for (QueueItem &it : queue_) release(it);
    for (QueueItem &it : delivering_) release(it);
  }

  void start(Napi::ThreadSafeFunction tsfn, uint64_t overrunBase) {
    std::lock_guard<std::mutex> lk(mu_);
    tsfn_ = tsfn;
    overrunBase_ = overrunBase;
    started_ = true;
    if (!queue_.empty()) notify();
  }

  void waitForSpace(uint32_t chunks, std::chrono::steady_clock::time_point deadline) override {
    // A ring never waits for its readers; neither does the capture for a
    // ring's level events. Only a sink that takes the samples themselves
    // holds the capture back.
    if (!opts_.chunks || !opts_.payload) return;
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait_until(lk, deadline, [&] {
      uint64_t held = queued_ + inflight_;
      return cancelled_ || held == 0 || held + chunks <= opts_.queue;
    });
  }

  void chunks(ChunkBlock &b) override {
    const unsigned stride = chunkStride(cfg_.channels);
    uint64_t base;
    std::vector<double> rows;
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (cancelled_) return;
      base = overrunBase_;
      if (!spareRows_.empty()) {
        rows.swap(spareRows_.back());
        spareRows_.pop_back();
      }
    }
    if (ring_) writeRing(b, base);
    {
      std::lock_guard<std::mutex> lk(statsMu_);
      stats_.chunks += b.count;
      const double *last = &b.info[size_t(b.count - 1) * stride];
      stats_.overruns = uint64_t(last[kOverruns]) - base;
      stats_.rms.assign(last + kLevels, last + kLevels + cfg_.channels);
      stats_.peak.assign(last + kLevels + cfg_.channels, last + kLevels + 2 * cfg_.channels);
    }
    if (!opts_.chunks) return;
    QueueItem it;
    it.kind = QueueItem::Chunks;
    it.count = b.count;
    it.chunkBytes = b.chunkBytes;
    it.info.swap(rows);
    it.info.assign(b.info.begin(), b.info.end());
    for (uint32_t k = 0; k < b.count; k++) it.info[size_t(k) * stride + kOverruns] -= double(base);
    if (opts_.payload) {
      it.pool = b.pool;
      if (b.mayTake) {
        it.data = b.data;
        b.taken = true;
      } else {
        it.data = b.pool->take();
        if (!it.data) return;
        std::memcpy(it.data, b.data, size_t(b.count) * b.chunkBytes);
      }
    }
    push(std::move(it));
  }

  void event(const CaptureEvent &ev) override {
    QueueItem it;
    it.kind = QueueItem::State;
    it.ev = ev;
    push(std::move(it));
  }

  void ack(uint64_t chunks) {
    std::lock_guard<std::mutex> lk(mu_);
    inflight_ -= std::min(chunks, inflight_);
    cv_.notify_all();
  }

  void cancel() override {
    std::lock_guard<std::mutex> lk(mu_);
    cancelled_ = true;
    cv_.notify_all();
  }

  // After the capture let go of this sink: nothing more reaches JavaScript.
  void finish() {
    std::vector<QueueItem> rest;
    {
      std::lock_guard<std::mutex> lk(mu_);
      cancelled_ = true;
      finished_ = true;
      rest.swap(queue_);
      queued_ = 0;
    }
    for (QueueItem &it : rest) release(it);
    if (ring_) ring_->close(!keepRing_);
  }

  void setKeepRing(bool keep) { keepRing_ = keep; }

  SinkStats stats() {
    std::lock_guard<std::mutex> lk(statsMu_);
    return stats_;
  }

  void deliver(Napi::Env env, Napi::Function cb) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      // Both vectors keep their capacity from call to call: no allocation here.
      delivering_.swap(queue_);
      if (opts_.ack) inflight_ += queued_;
      queued_ = 0;
    }
    cv_.notify_all();
    // Without an environment the function is being torn down (a worker
    // ending): there is nobody to deliver to.
    if (env != nullptr && !cb.IsEmpty()) deliverEach(env, cb);
    std::lock_guard<std::mutex> lk(mu_);
    for (QueueItem &it : delivering_) {
      release(it);
      if (it.info.capacity() && spareRows_.size() < kSpareRows) spareRows_.push_back(std::move(it.info));
    }
    delivering_.clear();
  }

  // One call per item with plain arguments: building an object per event
  // costs more than the rest of the delivery.
  void deliverEach(napi_env env, napi_value cb) {
    napi_value undefined;
    napi_get_undefined(env, &undefined);
    for (QueueItem &it : delivering_) {
      {
        // The callback may have stopped the subscription.
        std::lock_guard<std::mutex> lk(mu_);
        if (finished_) return;
      }
      JsBuilder js(env);
      napi_value args[6] = {undefined, undefined, undefined, undefined, undefined, undefined};
      size_t argc = 0;
      if (it.kind == QueueItem::Chunks) {
        args[0] = js.number(kEventChunks);
        args[1] = js.number(it.count);
        args[2] = js.number(double(it.dropped));
        args[3] = js.float64(it.info, scratch_.get(env, it.info.size()));
        if (it.data && js.ok) {
          size_t bytes = size_t(it.count) * it.chunkBytes;
          size_t offset = 0;
          uint8_t *at = nullptr;
          js.ok = slab_.place(env, bytes, &args[4], &offset, &at);
          if (js.ok) std::memcpy(at, it.data, bytes);
          args[5] = js.number(double(offset));
        }
        argc = 6;
      } else if (it.ev.kind == CaptureEvent::Running) {
        args[0] = js.number(kEventRunning);
        args[1] = js.number(it.ev.periodFrames);
        args[2] = js.number(it.ev.bufferFrames);
        args[3] = js.boolean(it.ev.resumed);
        argc = 4;
      } else if (it.ev.kind == CaptureEvent::Disconnected) {
        args[0] = js.number(kEventDisconnected);
        args[1] = js.string(it.ev.message);
        argc = 2;
      } else {
        args[0] = js.number(kEventError);
        args[1] = js.string(it.ev.code);
        args[2] = js.string(it.ev.message);
        argc = 3;
      }
      release(it);
      // JavaScript is shutting down (a worker ending): the rest goes back.
      if (!js.ok) continue;
      napi_value result;
      // An exception the callback throws stays pending, and Node reports it
      // as uncaught; the rest of the batch is not delivered then.
      if (napi_call_function(env, undefined, cb, argc, args, &result) != napi_ok) return;
    }
  }

  // Keeps the caller's Float64Array for chunk rows.
  void setScratch(napi_env env, napi_value typedArray) { scratch_.set(env, typedArray); }

  void dropScratch(napi_env env) {
    scratch_.drop(env);
    slab_.drop(env);
  }

 private:
  void notify() {
    tsfn_.NonBlockingCall(this, [](Napi::Env env, Napi::Function cb, JsSink *self) { self->deliver(env, cb); });
  }

  void push(QueueItem &&it) {
    bool wasEmpty;
    bool wake = false;
    uint64_t droppedNow = 0;
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (finished_) {
        release(it);
        return;
      }
      wasEmpty = queue_.empty();
      if (it.kind == QueueItem::Chunks) {
        // JavaScript is behind: the oldest chunks go, and the next ones
        // delivered say how many.
        for (auto qi = queue_.begin(); qi != queue_.end() && queued_ + inflight_ + it.count > opts_.queue && queued_ > 0;) {
          if (qi->kind != QueueItem::Chunks) {
            ++qi;
            continue;
          }
          it.dropped += qi->dropped + qi->count;
          droppedNow += qi->count;
          queued_ -= qi->count;
          release(*qi);
          qi = queue_.erase(qi);
        }
        queued_ += it.count;
      }
      queue_.push_back(std::move(it));
      wake = wasEmpty && started_;
    }
    // Outside the lock: JavaScript, woken by this, takes the same lock first
    // thing, and would otherwise sleep on it until this thread let go.
    if (wake) notify();
    if (droppedNow) {
      std::lock_guard<std::mutex> lk(statsMu_);
      stats_.dropped += droppedNow;
    }
  }

  void writeRing(const ChunkBlock &b, uint64_t base) {
    const unsigned stride = chunkStride(cfg_.channels);
    for (uint32_t k = 0; k < b.count; k++) {
      const double *row = &b.info[size_t(k) * stride];
      std::string meta = audioMetaJson(cfg_, row, row[kOverruns] - double(base));
      uint64_t realtimeNs = uint64_t(row[kRealtimeMs] * 1e6);
      try {
        ring_->write(b.data + size_t(k) * b.chunkBytes, b.chunkBytes, meta.data(), uint32_t(meta.size()), realtimeNs,
                     uint64_t(row[kMonotonicNs]));
      } catch (const RingError &e) {
        // Reported once per distinct failure; the capture itself goes on.
        if (e.what() == ringError_) continue;
        ringError_ = e.what();
        CaptureEvent ev;
        ev.kind = CaptureEvent::Error;
        ev.code = e.code;
        ev.message = "writing to ring " + ring_->name() + " failed: " + e.what();
        event(ev);
        continue;
      }
      std::lock_guard<std::mutex> lk(statsMu_);
      stats_.ringFrames++;
    }
  }

  CaptureConfig cfg_;
  SinkOptions opts_;
  std::unique_ptr<RingWriter> ring_;
  ScratchRow scratch_;  // JavaScript thread only
  PayloadSlab slab_;  // used on the JavaScript thread only
  bool keepRing_ = false;
  std::string ringError_;
  Napi::ThreadSafeFunction tsfn_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<QueueItem> queue_;
  std::vector<QueueItem> delivering_;  // the JavaScript thread's, during deliver()
  // Row vectors of delivered items, for the next ones: no allocation per chunk.
  static constexpr size_t kSpareRows = 8;
  std::vector<std::vector<double>> spareRows_;
  uint64_t queued_ = 0;    // chunks in queue_
  uint64_t inflight_ = 0;  // chunks handed over and not yet acknowledged
  uint64_t overrunBase_ = 0;
  bool started_ = false;
  bool cancelled_ = false;
  bool finished_ = false;

  std::mutex statsMu_;
  SinkStats stats_;
};

// ---------------------------------------------------------------- subscription

class SubscriptionWrap : public Napi::ObjectWrap<SubscriptionWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "AlsaSubscription",
                       {InstanceMethod<&SubscriptionWrap::Stop>("stop"),
                        InstanceMethod<&SubscriptionWrap::Ack>("ack"),
                        InstanceMethod<&SubscriptionWrap::Stats>("stats")});
  }

  // AlsaSubscription(options, onEvents(events[]))
  SubscriptionWrap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<SubscriptionWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction())
      throw Napi::TypeError::New(env, "AlsaSubscription(options, callback) needs an options object and a function");
    Napi::Object o = info[0].As<Napi::Object>();
    CaptureConfig cfg;
    cfg.device = text(o, "device", "");
    if (cfg.device.empty() || cfg.device.size() > 256)
      throw Napi::TypeError::New(env, "device must be an ALSA device name of 1 to 256 characters");
    cfg.rate = wholeNumber(o, "rate", 1000, 768000, 48000);
    cfg.channels = wholeNumber(o, "channels", 1, 32, 2);
    std::string format = text(o, "format", "S16_LE");
    if (!parseSampleFormat(format, &cfg.format))
      throw Napi::TypeError::New(env, "format must be S16_LE, S32_LE or FLOAT_LE");
    cfg.chunkFrames = wholeNumber(o, "chunkFrames", 1, 1u << 22, cfg.rate / 100);
    cfg.periodFrames = wholeNumber(o, "periodFrames", 1, 1u << 22, cfg.chunkFrames);
    cfg.bufferFrames = wholeNumber(o, "bufferFrames", 2, 1u << 24, cfg.periodFrames * 4);
    cfg.batchChunks = wholeNumber(o, "batch", 1, 100000, 1);
    cfg.procRoot = text(o, "procRoot", "/proc");
    if (cfg.chunkBytes() > (64u << 20)) throw Napi::TypeError::New(env, "a chunk may hold at most 64 MiB");
    SinkOptions opts;
    opts.chunks = flag(o, "chunks", true);
    opts.payload = flag(o, "payload", true);
    opts.queue = wholeNumber(o, "queue", 1, 100000, 100);
    opts.ack = flag(o, "ack", false);

    std::unique_ptr<RingWriter> ring;
    bool keep = false;
    if (o.Has("ring") && o.Get("ring").IsObject()) {
      Napi::Object r = o.Get("ring").As<Napi::Object>();
      RingWriterOptions ro;
      ro.slots = wholeNumber(r, "slots", 1, 4096, 64);
      ro.slotSize = cfg.chunkBytes();
      ro.mode = wholeNumber(r, "mode", 0, 0777, 0600);
      if (r.Has("maxBytes") && r.Get("maxBytes").IsNumber())
        ro.maxBytes = uint64_t(r.Get("maxBytes").As<Napi::Number>().DoubleValue());
      ro.contentType = std::string("audio/x-raw,format=") + sampleFormatCaps(cfg.format) +
                       ",rate=" + std::to_string(cfg.rate) + ",channels=" + std::to_string(cfg.channels) +
                       ",layout=interleaved";
      keep = flag(r, "keep", false);
      try {
        ring = std::make_unique<RingWriter>(text(r, "name", ""), ro);
      } catch (const RingError &e) {
        throw codedError(env, e.code, e.what());
      }
    }

    sink_ = std::make_shared<JsSink>(cfg, opts, std::move(ring));
    sink_->setKeepRing(keep);
    if (o.Has("rows") && o.Get("rows").IsTypedArray()) sink_->setScratch(env, o.Get("rows"));
    // The queued call may run after stop(); the sink it points to lives until
    // the thread-safe function is finalized.
    auto *hold = new std::shared_ptr<JsSink>(sink_);
    tsfn_ = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "devplane-alsa-capture", 0, 1,
                                          [](Napi::Env, std::shared_ptr<JsSink> *p) { delete p; }, hold);
    try {
      uint64_t base = 0;
      capture_ = subscribeCapture(cfg, sink_, &base);
      sink_->start(tsfn_, base);
    } catch (const std::exception &e) {
      sink_->finish();
      sink_->dropScratch(env);
      tsfn_.Release();
      throw codedError(env, "EIO", e.what());
    }
    env_ = env;
    napi_add_env_cleanup_hook(env, &SubscriptionWrap::Cleanup, this);
  }

  ~SubscriptionWrap() override { shutdown(); }

 private:
  static void Cleanup(void *arg) { static_cast<SubscriptionWrap *>(arg)->shutdown(); }

  void shutdown() {
    if (!capture_) return;
    releaseCapture(capture_, sink_);
    capture_.reset();
    sink_->finish();
    sink_->dropScratch(env_);
    tsfn_.Release();
    napi_remove_env_cleanup_hook(env_, &SubscriptionWrap::Cleanup, this);
  }

  Napi::Value Stop(const Napi::CallbackInfo &info) {
    shutdown();
    return info.Env().Undefined();
  }

  // ack(chunks): JavaScript is done with that many chunks (option `ack`).
  Napi::Value Ack(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "ack(chunks) needs a number");
    double n = info[0].As<Napi::Number>().DoubleValue();
    if (n > 0) sink_->ack(uint64_t(n));
    return env.Undefined();
  }

  Napi::Value Stats(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    SinkStats s = sink_->stats();
    Napi::Object o = Napi::Object::New(env);
    o.Set("chunks", Napi::Number::New(env, double(s.chunks)));
    o.Set("dropped", Napi::Number::New(env, double(s.dropped)));
    o.Set("overruns", Napi::Number::New(env, double(s.overruns)));
    o.Set("ringFrames", Napi::Number::New(env, double(s.ringFrames)));
    Napi::Array rms = Napi::Array::New(env, s.rms.size());
    Napi::Array peak = Napi::Array::New(env, s.peak.size());
    for (uint32_t i = 0; i < s.rms.size(); i++) rms.Set(i, Napi::Number::New(env, s.rms[i]));
    for (uint32_t i = 0; i < s.peak.size(); i++) peak.Set(i, Napi::Number::New(env, s.peak[i]));
    o.Set("rmsDbfs", rms);
    o.Set("peakDbfs", peak);
    return o;
  }

  std::shared_ptr<JsSink> sink_;
  std::shared_ptr<Capture> capture_;
  Napi::ThreadSafeFunction tsfn_;
  napi_env env_ = nullptr;
};

// ---------------------------------------------------------------- device list

struct PcmHint {
  std::string name, description, direction;
};

struct CardInfo {
  int index;
  std::string id, name, longname;
  std::vector<std::pair<int, std::string>> captureDevices;
};

std::string firstLine(const std::string &path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return line;
}

// Capture devices of a card as the kernel lists them: pcm<N>c/info.
std::vector<std::pair<int, std::string>> cardCaptureDevices(int card) {
  std::vector<std::pair<int, std::string>> out;
  std::string dir = "/proc/asound/card" + std::to_string(card);
  DIR *d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent *e = readdir(d)) {
    int dev;
    char tail;
    if (std::sscanf(e->d_name, "pcm%d%c", &dev, &tail) != 2 || tail != 'c') continue;
    std::ifstream f(dir + "/" + e->d_name + "/info");
    std::string line, name;
    while (std::getline(f, line))
      if (line.rfind("name: ", 0) == 0) name = line.substr(6);
    out.emplace_back(dev, name);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

class DevicesWorker : public Napi::AsyncWorker {
 public:
  explicit DevicesWorker(Napi::Env env) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    std::string err;
    const alsa::Api *a = alsa::load(&err);
    if (!a) {
      code_ = "ENOLIB";
      SetError(err);
      return;
    }
    void **hints = nullptr;
    if (a->device_name_hint(-1, "pcm", &hints) >= 0 && hints) {
      for (void **h = hints; *h; h++) {
        char *name = a->device_name_get_hint(*h, "NAME");
        char *desc = a->device_name_get_hint(*h, "DESC");
        char *io = a->device_name_get_hint(*h, "IOID");
        // No IOID means both directions; "Output" cannot capture.
        if (name && (!io || std::strcmp(io, "Output") != 0) && std::strcmp(name, "null") != 0)
          pcms_.push_back({name, desc ? desc : "", io ? io : ""});
        std::free(name);
        std::free(desc);
        std::free(io);
      }
      a->device_name_free_hint(hints);
    }
    int card = -1;
    while (a->card_next(&card) == 0 && card >= 0) {
      CardInfo c{card, firstLine("/proc/asound/card" + std::to_string(card) + "/id"), "", "", {}};
      char *s = nullptr;
      if (a->card_get_name(card, &s) == 0 && s) c.name = s;
      std::free(s);
      s = nullptr;
      if (a->card_get_longname(card, &s) == 0 && s) c.longname = s;
      std::free(s);
      c.captureDevices = cardCaptureDevices(card);
      cards_.push_back(c);
    }
    alsa::takeLastMessage();
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object out = Napi::Object::New(env);
    out.Set("library", alsa::libraryName());
    Napi::Array pcms = Napi::Array::New(env, pcms_.size());
    for (uint32_t i = 0; i < pcms_.size(); i++) {
      Napi::Object p = Napi::Object::New(env);
      p.Set("name", pcms_[i].name);
      p.Set("description", pcms_[i].description);
      p.Set("direction", pcms_[i].direction.empty() ? "both" : pcms_[i].direction == "Input" ? "capture" : "playback");
      pcms.Set(i, p);
    }
    out.Set("pcms", pcms);
    Napi::Array cards = Napi::Array::New(env, cards_.size());
    for (uint32_t i = 0; i < cards_.size(); i++) {
      Napi::Object c = Napi::Object::New(env);
      c.Set("index", Napi::Number::New(env, cards_[i].index));
      c.Set("id", cards_[i].id);
      c.Set("name", cards_[i].name);
      c.Set("longname", cards_[i].longname);
      Napi::Array devs = Napi::Array::New(env, cards_[i].captureDevices.size());
      for (uint32_t k = 0; k < cards_[i].captureDevices.size(); k++) {
        Napi::Object d = Napi::Object::New(env);
        d.Set("device", Napi::Number::New(env, cards_[i].captureDevices[k].first));
        d.Set("name", cards_[i].captureDevices[k].second);
        devs.Set(k, d);
      }
      c.Set("captureDevices", devs);
      cards.Set(i, c);
    }
    out.Set("cards", cards);
    deferred_.Resolve(out);
  }

  void OnError(const Napi::Error &e) override {
    Napi::Error err = codedError(Env(), code_.empty() ? "EIO" : code_, e.Message());
    deferred_.Reject(err.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::string code_;
  std::vector<PcmHint> pcms_;
  std::vector<CardInfo> cards_;
};

Napi::Value AlsaDevices(const Napi::CallbackInfo &info) {
  auto *w = new DevicesWorker(info.Env());
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

Napi::Value AlsaActiveCaptures(const Napi::CallbackInfo &info) {
  return Napi::Number::New(info.Env(), double(activeCaptures()));
}

}  // namespace

void InitAlsa(Napi::Env env, Napi::Object exports) {
  exports.Set("AlsaSubscription", SubscriptionWrap::Init(env));
  exports.Set("alsaDevices", Napi::Function::New(env, AlsaDevices));
  exports.Set("alsaActiveCaptures", Napi::Function::New(env, AlsaActiveCaptures));
}

}  // namespace devplane
