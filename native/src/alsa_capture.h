// Microphone capture through alsa-lib on a thread of its own. Plain C++ with
// no Node-API: the binding attaches sinks, and a capture shared by several
// sinks opens its device once (two flows on one microphone need no dsnoop).
#pragma once

#include "proc_holders.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "alsa_loader.h"

namespace devplane {

enum class SampleFormat { S16_LE, S32_LE, FLOAT_LE };

const char *sampleFormatName(SampleFormat f);
// GStreamer's name for the format, as the ring's caps string carries it.
const char *sampleFormatCaps(SampleFormat f);
unsigned sampleBytes(SampleFormat f);
bool parseSampleFormat(const std::string &name, SampleFormat *out);

struct CaptureConfig {
  std::string device;
  unsigned rate = 48000;
  unsigned channels = 2;
  SampleFormat format = SampleFormat::S16_LE;
  unsigned chunkFrames = 480;
  unsigned periodFrames = 480;
  unsigned bufferFrames = 24000;
  // Chunks handed to the sinks together: the thread holds complete chunks
  // until it has this many, so JavaScript wakes once per batch.
  unsigned batchChunks = 1;
  // Where the busy check looks for the process holding the device.
  std::string procRoot = "/proc";

  std::string key() const;
  unsigned frameBytes() const { return channels * sampleBytes(format); }
  size_t chunkBytes() const { return size_t(chunkFrames) * frameBytes(); }
};

// What the capture knows about one chunk. Doubles, in the order the binding
// hands them to JavaScript (one row per chunk).
enum ChunkField : unsigned {
  kSeq = 0,
  kMonotonicNs,
  kRealtimeMs,
  kReadNs,
  kOverruns,
  kLevels,  // then rmsDbfs per channel, then peakDbfs per channel
};

inline unsigned chunkStride(unsigned channels) { return kLevels + 2 * channels; }

// Blocks of one capture's size, reused: a block handed to a sink comes back
// once JavaScript has its own copy, so the thread reads into memory that is
// mapped and in cache instead of faulting in fresh pages for every read.
class BlockPool {
 public:
  explicit BlockPool(size_t bytes) : bytes_(bytes) {}
  ~BlockPool();
  BlockPool(const BlockPool &) = delete;
  BlockPool &operator=(const BlockPool &) = delete;
  uint8_t *take();  // nullptr when out of memory
  void give(uint8_t *block);
  size_t bytes() const { return bytes_; }

 private:
  std::mutex mu_;
  std::vector<uint8_t *> free_;
  size_t bytes_;
};

// A run of consecutive chunks read together. `data` (from `pool`) stays
// valid for the whole delivery; only the last sink may take it, setting
// `taken`, so no sink copies from a block that is already back in the pool.
struct ChunkBlock {
  uint8_t *data = nullptr;
  std::shared_ptr<BlockPool> pool;
  size_t chunkBytes = 0;
  uint32_t count = 0;
  std::vector<double> info;  // count * chunkStride(channels)
  bool mayTake = false;
  bool taken = false;
};

struct CaptureEvent {
  enum Kind { Running, Disconnected, Error };
  Kind kind = Running;
  std::string code;     // for Error: ENOLIB, EBUSY, ENODEV, EACCES, EINVAL, EIO
  std::string message;  // a sentence for the user
  unsigned periodFrames = 0;
  unsigned bufferFrames = 0;
  bool resumed = false;  // Running after a Disconnected
};

class CaptureSink {
 public:
  virtual ~CaptureSink() = default;
  // Backpressure: waits until the sink can take `chunks` more, or `deadline`.
  // While the capture waits, audio waits in the device's buffer.
  virtual void waitForSpace(uint32_t chunks, std::chrono::steady_clock::time_point deadline) = 0;
  virtual void chunks(ChunkBlock &block) = 0;
  virtual void event(const CaptureEvent &ev) = 0;
  // Stops a waitForSpace() in progress and every later one.
  virtual void cancel() = 0;
};

// Processes holding a capture device, for the "busy" error.
using DeviceHolder = ProcessHolder;
std::vector<DeviceHolder> findCaptureHolders(const std::string &procRoot, int card, int device);

class Capture {
 public:
  explicit Capture(const CaptureConfig &cfg);
  ~Capture();
  Capture(const Capture &) = delete;
  Capture &operator=(const Capture &) = delete;

  const CaptureConfig &config() const { return cfg_; }
  // Attaches a sink (starting the thread with the first one) and tells it the
  // state so far. Returns the overrun count at this point, the sink's zero.
  uint64_t add(const std::shared_ptr<CaptureSink> &sink);
  // Detaches a sink; no call reaches it once this returns. True when none is left.
  bool remove(const std::shared_ptr<CaptureSink> &sink);
  // Ends the thread (which closes the device) and joins it.
  void stop();

 private:
  void run();
  bool openDevice();
  void closeDevice();
  bool configure(std::string *code, std::string *message);
  void deliver(uint32_t count, size_t leftoverFrames);
  // Hands over the complete chunks held back for a batch before the audio
  // stops joining up (an overrun, an unplug, a read error); drops the rest.
  void flushHeld();
  void broadcast(const CaptureEvent &ev);
  void fail(const std::string &code, const std::string &message);
  void disconnected(const std::string &why);
  // Sleeps up to ms; false when a stop was asked for.
  bool sleepFor(int ms);
  bool stopping() const;
  std::string describeOpenError(int err, std::string *code);

  CaptureConfig cfg_;
  const alsa::Api *api_ = nullptr;
  alsa::snd_pcm_t *pcm_ = nullptr;
  unsigned period_ = 0;
  unsigned buffer_ = 0;
  int stopFd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;

  std::mutex sinksMu_;
  std::vector<std::shared_ptr<CaptureSink>> sinks_;
  CaptureEvent lastState_;
  bool haveState_ = false;
  std::string lastError_;
  bool lost_ = false;

  std::shared_ptr<BlockPool> pool_;
  std::vector<std::shared_ptr<CaptureSink>> waitOn_;
  std::vector<double> info_;
  uint8_t *block_ = nullptr;
  uint32_t blockChunks_ = 1;
  size_t filled_ = 0;  // frames in block_
  uint64_t seq_ = 0;
  std::atomic<uint64_t> overruns_{0};
  uint64_t lastMonotonicNs_ = 0;
};

// Captures are shared by key (device and settings). Subscribing and releasing
// happen on JavaScript threads; the registry lock also covers the stop, so a
// new subscriber never joins a capture that is shutting down.
std::shared_ptr<Capture> subscribeCapture(const CaptureConfig &cfg, const std::shared_ptr<CaptureSink> &sink,
                                          uint64_t *overrunBase);
void releaseCapture(const std::shared_ptr<Capture> &capture, const std::shared_ptr<CaptureSink> &sink);
// Captures running now, for tests that check sharing.
size_t activeCaptures();

}  // namespace devplane
