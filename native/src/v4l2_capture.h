// Camera capture through V4L2 streaming on a thread of its own. Plain C++ with
// no Node-API: consumers attach as sinks, and one open device feeds them all
// ("one capture, many consumers"). The thread polls, dequeues, hands each
// frame to every sink while the buffer is still its own, and queues the
// buffer again. With a ring that asks for it, the driver writes frames
// straight into the ring's slots (V4L2_MEMORY_USERPTR).
#pragma once

#include <linux/videodev2.h>
#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "v4l2_blocks.h"
#include "v4l2_device.h"
#include "v4l2_ring.h"

namespace devplane {
namespace v4l2 {

struct CaptureConfig {
  std::string device;
  uint32_t fourcc = 0;  // 0: keep the camera's current format
  uint32_t width = 0, height = 0;
  uint32_t tpfNum = 0, tpfDen = 0;  // time per frame; 0: keep the camera's
  uint32_t buffers = 4;
  std::vector<std::string> extraPaths;
  std::string procRoot = "/proc";

  // Captures with the same key share one device.
  std::string key() const;
};

// What the camera agreed to, and where it is now.
struct Negotiated {
  uint32_t fourcc = 0, width = 0, height = 0, stride = 0, sizeimage = 0;
  uint32_t tpfNum = 0, tpfDen = 0;
  std::string path;
  std::string card;
  std::string busInfo;
  // "mmap" (driver buffers, copied), "userptr" (blocks of the capture's
  // pool that a sink may keep) or "ring" (a ring's slots, filled by the driver)
  std::string memory;
  uint32_t buffers = 0;
};

// One dequeued frame. `data` is valid only during FrameSink::frame().
struct FrameView {
  const uint8_t *data = nullptr;
  uint32_t bytes = 0;
  // From 0 at this capture's first frame, advancing with the driver's
  // sequence, so a gap is a frame the camera or driver lost.
  uint64_t seq = 0;
  uint64_t monotonicNs = 0;  // capture time on CLOCK_MONOTONIC (the buffer's timestamp)
  uint64_t realtimeNs = 0;
  uint64_t dqbufNs = 0;      // CLOCK_MONOTONIC right after DQBUF
  uint64_t lost = 0;         // frames the driver lost since this capture started
  const Negotiated *format = nullptr;
  // The ring slot the frame already lies in (zero copy), and its sequence.
  CaptureRing *ring = nullptr;
  uint64_t ringSeq = 0;
};

struct CaptureEvent {
  enum Kind { Running, Disconnected, Waiting, Error };
  Kind kind = Running;
  std::string code;     // for Error and Waiting: ENODEV, EBUSY, EACCES, ENOTCAPTURE, EINVAL, ENOSPC, EIO, ...
  std::string message;  // a sentence for the user
  Negotiated format;    // with Running
  bool resumed = false; // Running after Disconnected
};

class FrameSink {
 public:
  virtual ~FrameSink() = default;
  // Capture thread, with the sink list locked: copy what is needed and return.
  virtual void frame(const FrameView &f) = 0;
  virtual void event(const CaptureEvent &ev) = 0;
  // Capture thread, before a stream in this format starts.
  virtual void prepare(const Negotiated &fmt) { (void)fmt; }
  // A ring the driver may write into directly; nullptr for none.
  virtual CaptureRing *zeroCopyRing() { return nullptr; }
  // The driver cannot write into the ring; frames are copied from now on.
  virtual void zeroCopyFailed(const std::string &why) { (void)why; }
  // A sink that hands every frame's bytes on may keep the block the frame
  // lies in instead of copying it (the driver filled a block of the
  // capture's pool, V4L2_MEMORY_USERPTR, and gets another in its place).
  virtual bool wantsBlocks() { return false; }
  // Instead of frame(), for the one sink that may keep the block. True when
  // it kept it (and will give it back to `pool` with `taken`).
  virtual bool takeBlock(const FrameView &f, uint8_t *block, size_t taken, const std::shared_ptr<BlockPool> &pool) {
    (void)block;
    (void)taken;
    (void)pool;
    frame(f);
    return false;
  }
};

class Capture {
 public:
  explicit Capture(const CaptureConfig &cfg);
  ~Capture();
  Capture(const Capture &) = delete;
  Capture &operator=(const Capture &) = delete;

  const CaptureConfig &config() const { return cfg_; }
  // Attaches a sink (starting the thread with the first one); its controls
  // are applied to the camera and again whenever it is reopened.
  void add(const std::shared_ptr<FrameSink> &sink, const std::vector<ControlRequest> &controls);
  // Detaches a sink. Once this returns no call reaches it, and the driver no
  // longer holds any of its ring's slots. True when no sink is left.
  bool remove(const std::shared_ptr<FrameSink> &sink);
  // Ends the thread, which stops streaming, unmaps and closes the device.
  void stop();

  // Any thread. Sets controls on the open camera and remembers them for the
  // next open; *applied is false when the camera is not open now.
  std::vector<ControlResult> setControls(const std::vector<ControlRequest> &requests, bool *applied);
  // Any thread. False when the camera is not open now.
  bool controls(std::vector<ControlInfo> *out);
  dev_t rdev() const { return rdev_.load(); }
  std::string describe();

  struct Stats {
    uint64_t frames, lost, errors, restarts;
    std::string memory;
    uint64_t poolHits, poolMisses;
    int threadId;  // the capture thread's, for per-thread CPU figures
  };
  Stats stats();

 private:
  void run();
  std::string pickPath(bool searching);
  bool openAndStart();
  bool configure();
  bool startStream();
  bool startUserptr(CaptureRing *ring, const std::shared_ptr<FrameSink> &owner, std::string *why);
  bool startMmap();
  bool startBlocks(std::string *why);
  void stopStream();
  void restartStream();
  void closeDevice();
  bool dequeue();
  bool handle(v4l2_buffer &b, uint64_t dqNs);
  bool requeue(v4l2_buffer &b);
  void applyPendingControls();
  void syncSinks();
  bool deviceGone();
  std::string busyMessage(const std::string &what);

  void broadcast(const CaptureEvent &ev);
  void fail(const std::string &code, const std::string &message);
  void waiting(const std::string &code, const std::string &message);
  void disconnected(const std::string &why);
  bool sleepFor(int ms);
  bool stopping() const { return stop_.load(std::memory_order_relaxed); }

  CaptureConfig cfg_;
  int wakeFd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<bool> sinksChanged_{false};
  std::atomic<bool> controlsDirty_{false};
  std::thread thread_;
  bool threadDone_ = false;  // under sinksMu_

  std::mutex sinksMu_;
  std::condition_variable sinksCv_;
  std::vector<std::shared_ptr<FrameSink>> sinks_;
  CaptureEvent lastState_;
  bool haveState_ = false;
  CaptureEvent lastErrorEv_;
  bool haveErrorEv_ = false;
  std::string lastError_;
  std::string lastWaiting_;

  // The open device. The capture thread changes fd_ under fdMu_; other
  // threads use it for controls under the same lock.
  std::mutex fdMu_;
  int fd_ = -1;
  std::atomic<dev_t> rdev_{0};
  std::string path_;
  Identity identity_;
  bool haveIdentity_ = false;
  std::vector<std::string> links_;
  bool lost_ = false;  // disconnected, looking for the camera again
  unsigned searchRound_ = 0;

  std::mutex controlsMu_;
  std::vector<ControlRequest> controls_;
  std::vector<ControlRequest> pendingControls_;

  // Stream state, capture thread only (but zcSink_ also under sinksMu_).
  struct Buffer {
    void *addr = nullptr;   // the mapping (mmap) or the pool block (userptr)
    size_t length = 0;
    uint64_t ringSeq = 0;
    size_t taken = 0;       // what the block was taken from the pool for
  };
  std::vector<Buffer> bufs_;
  uint32_t memory_ = 0;
  bool blocks_ = false;      // USERPTR with pool blocks
  bool blocksRefused_ = false;
  std::shared_ptr<BlockPool> pool_ = std::make_shared<BlockPool>();
  bool streaming_ = false;
  CaptureRing *zcRing_ = nullptr;
  std::shared_ptr<FrameSink> zcSink_;
  std::vector<FrameSink *> zcRefused_;
  Negotiated fmt_;
  uint64_t intervalNs_ = 0;
  uint64_t lastFrameNs_ = 0;
  unsigned stalls_ = 0;

  bool haveSeq_ = false;
  uint32_t lastV4l2Seq_ = 0;
  int64_t seqBase_ = 0;
  uint64_t nextSeq_ = 0;
  uint64_t lastMonoNs_ = 0;
  bool anyFrame_ = false;

  int retryMs_ = 0;
  std::vector<FrameSink *> prepared_;  // under sinksMu_

  std::atomic<uint64_t> frames_{0}, lostFrames_{0}, errors_{0}, restarts_{0};
  std::atomic<int> memoryKind_{0};  // 0 none, 1 mmap, 2 ring, 3 userptr
  std::atomic<int> threadId_{0};
};

// Captures are shared by key. Subscribing and releasing happen on JavaScript
// threads; the registry lock also covers the stop, so a new subscriber never
// joins a capture that is shutting down.
std::shared_ptr<Capture> subscribeCapture(const CaptureConfig &cfg, const std::shared_ptr<FrameSink> &sink,
                                          const std::vector<ControlRequest> &controls);
void releaseCapture(const std::shared_ptr<Capture> &capture, const std::shared_ptr<FrameSink> &sink);
size_t activeCaptures();

}  // namespace v4l2
}  // namespace devplane
