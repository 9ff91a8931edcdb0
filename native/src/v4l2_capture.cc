#include "v4l2_capture.h"

#include "capture_registry.h"

#include <fcntl.h>
#include <linux/videodev2.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

namespace devplane {
namespace v4l2 {

namespace {

// A missing camera is looked for this often, so one that comes back resumes
// well within a second.
constexpr int kWaitMs = 200;
constexpr int kBusyRetryMs = 2000;
constexpr int kRetryMs = 5000;
constexpr int kPollMs = 500;

uint64_t clockNs(clockid_t clk) {
  timespec ts;
  clock_gettime(clk, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

bool exists(const std::string &path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

std::string fpsText(uint32_t num, uint32_t den) {
  if (!num || !den) return "?";
  char buf[32];
  double fps = double(den) / num;
  std::snprintf(buf, sizeof(buf), fps == double(uint64_t(fps)) ? "%.0f" : "%.2f", fps);
  return buf;
}

std::string formatText(const Negotiated &f) {
  return formatName(f.fourcc) + " " + std::to_string(f.width) + "x" + std::to_string(f.height) + " at " +
         fpsText(f.tpfNum, f.tpfDen) + " fps";
}

// Devices this process has open through a Capture, to tell "busy because of
// another node here" from "busy because of another program". Its own lock:
// the registry lock is held while a capture thread is joined.
std::mutex openMu;
auto *openDevices = new std::map<const Capture *, std::pair<dev_t, std::string>>();

std::string heldHere(dev_t rdev, const Capture *self) {
  std::lock_guard<std::mutex> lk(openMu);
  for (auto &kv : *openDevices)
    if (kv.first != self && kv.second.first == rdev) return kv.second.second;
  return "";
}

void registerOpen(const Capture *c, dev_t rdev, const std::string &what) {
  std::lock_guard<std::mutex> lk(openMu);
  (*openDevices)[c] = {rdev, what};
}

void unregisterOpen(const Capture *c) {
  std::lock_guard<std::mutex> lk(openMu);
  openDevices->erase(c);
}

void mergeControls(std::vector<ControlRequest> *into, const std::vector<ControlRequest> &from) {
  for (const ControlRequest &r : from) {
    auto it = std::find_if(into->begin(), into->end(), [&](const ControlRequest &x) { return x.name == r.name; });
    if (it != into->end()) *it = r;
    else into->push_back(r);
  }
}

}  // namespace

std::string CaptureConfig::key() const {
  return device + '\n' + std::to_string(fourcc) + '/' + std::to_string(width) + 'x' + std::to_string(height) + '/' +
         std::to_string(tpfNum) + ':' + std::to_string(tpfDen) + '\n' + procRoot;
}

Capture::Capture(const CaptureConfig &cfg) : cfg_(cfg) {
  wakeFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wakeFd_ < 0) throw std::runtime_error(std::string("cannot create an eventfd: ") + std::strerror(errno));
}

Capture::~Capture() {
  stop();
  if (wakeFd_ >= 0) ::close(wakeFd_);
}

namespace {
void wakeUp(int fd) {
  uint64_t one = 1;
  ssize_t ignored = ::write(fd, &one, sizeof(one));
  (void)ignored;
}
}  // namespace

void Capture::add(const std::shared_ptr<FrameSink> &sink, const std::vector<ControlRequest> &controls) {
  if (!controls.empty()) {
    std::lock_guard<std::mutex> lk(controlsMu_);
    mergeControls(&controls_, controls);
    mergeControls(&pendingControls_, controls);
    controlsDirty_ = true;
  }
  std::lock_guard<std::mutex> lk(sinksMu_);
  sinks_.push_back(sink);
  if (haveState_) sink->event(lastState_);
  if (haveErrorEv_) sink->event(lastErrorEv_);
  sinksChanged_ = true;
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
  else wakeUp(wakeFd_);
}

bool Capture::remove(const std::shared_ptr<FrameSink> &sink) {
  bool empty, wasZeroCopy;
  {
    std::lock_guard<std::mutex> lk(sinksMu_);
    sinks_.erase(std::remove(sinks_.begin(), sinks_.end(), sink), sinks_.end());
    prepared_.erase(std::remove(prepared_.begin(), prepared_.end(), sink.get()), prepared_.end());
    zcRefused_.erase(std::remove(zcRefused_.begin(), zcRefused_.end(), sink.get()), zcRefused_.end());
    wasZeroCopy = zcSink_ == sink;
    empty = sinks_.empty();
    sinksChanged_ = true;
  }
  wakeUp(wakeFd_);
  if (wasZeroCopy) {
    // The driver holds slots of this sink's ring: wait until the stream has
    // given them back, so that the ring can be unmapped safely.
    std::unique_lock<std::mutex> lk(sinksMu_);
    sinksCv_.wait(lk, [&] { return zcSink_ != sink || threadDone_; });
  }
  return empty;
}

void Capture::stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  wakeUp(wakeFd_);
  thread_.join();
  // Blocks still in JavaScript are freed when their Buffers are collected.
  pool_->close();
}

bool Capture::sleepFor(int ms) {
  pollfd p{wakeFd_, POLLIN, 0};
  int rc = ::poll(&p, 1, ms);
  if (rc > 0) {
    uint64_t v;
    ssize_t ignored = ::read(wakeFd_, &v, sizeof(v));
    (void)ignored;
  }
  return !stopping();
}

void Capture::broadcast(const CaptureEvent &ev) {
  std::lock_guard<std::mutex> lk(sinksMu_);
  // A sink that joins later learns the state, and the error since, if any.
  if (ev.kind == CaptureEvent::Error) {
    lastErrorEv_ = ev;
    haveErrorEv_ = true;
  } else {
    lastState_ = ev;
    haveState_ = true;
    haveErrorEv_ = false;
  }
  for (auto &s : sinks_) s->event(ev);
}

void Capture::fail(const std::string &code, const std::string &message) {
  // Retries repeat the same failure every few seconds; say it once.
  if (message == lastError_) return;
  lastError_ = message;
  CaptureEvent ev;
  ev.kind = CaptureEvent::Error;
  ev.code = code;
  ev.message = message;
  broadcast(ev);
}

void Capture::waiting(const std::string &code, const std::string &message) {
  if (message == lastWaiting_) return;
  lastWaiting_ = message;
  lastError_.clear();
  CaptureEvent ev;
  ev.kind = CaptureEvent::Waiting;
  ev.code = code;
  ev.message = message;
  broadcast(ev);
}

void Capture::disconnected(const std::string &why) {
  closeDevice();
  retryMs_ = 0;
  if (lost_) return;
  lost_ = true;
  lastError_.clear();
  lastWaiting_.clear();
  CaptureEvent ev;
  ev.kind = CaptureEvent::Disconnected;
  ev.code = "ENODEV";
  ev.message = "camera " + path_ + " (\"" + identity_.card + "\") disconnected (" + why +
               "); waiting for it to come back";
  broadcast(ev);
}

std::string Capture::busyMessage(const std::string &what) {
  std::string other = heldHere(rdev_, this);
  if (!other.empty())
    return "camera " + path_ + " already streams " + other +
           " for another v4l2-capture node in this Node-RED: give both nodes the same format, size and frame "
           "rate to share one capture";
  std::vector<Holder> holders = findHolders(cfg_.procRoot, path_, rdev_);
  holders.erase(std::remove_if(holders.begin(), holders.end(), [](const Holder &h) { return h.pid == getpid(); }),
                holders.end());
  std::string msg = "camera " + path_ + " is busy (cannot " + what + ")";
  if (holders.empty())
    return msg + ": another program is streaming from it (one this user cannot see; \"sudo fuser -v " + path_ +
           "\" finds it)";
  msg += ": held by ";
  for (size_t i = 0; i < holders.size(); i++)
    msg += (i ? ", " : "") + holders[i].command + " (pid " + std::to_string(holders[i].pid) + ")";
  return msg;
}

bool Capture::deviceGone() {
  if (fd_ < 0) return true;
  v4l2_capability cap{};
  return xioctl(fd_, VIDIOC_QUERYCAP, &cap) < 0 && errno == ENODEV;
}

// ---------------------------------------------------------------- open and negotiate

std::string Capture::pickPath(bool searching) {
  if (!searching) return cfg_.device;
  // A stable link follows the camera to whatever node it gets.
  if (cfg_.device.rfind("/dev/v4l/", 0) == 0) return exists(cfg_.device) ? cfg_.device : "";
  for (const std::string &l : links_)
    if (exists(l)) return l;
  auto same = [&](const Identity &id) {
    return id.capture && id.busInfo == identity_.busInfo && id.card == identity_.card;
  };
  Identity id;
  if (exists(cfg_.device) && probeIdentity(cfg_.device, &id) && same(id)) return cfg_.device;
  // Under another /dev/videoN: look at every video node, a little less often.
  if (searchRound_++ % 2 == 0) {
    for (const std::string &p : candidatePaths(cfg_.extraPaths)) {
      if (p == cfg_.device) continue;
      if (probeIdentity(p, &id) && same(id)) return p;
    }
  }
  return "";
}

bool Capture::openAndStart() {
  std::string path = pickPath(lost_);
  if (path.empty()) {
    retryMs_ = kWaitMs;
    return false;
  }
  OpenOptions oo;
  oo.procRoot = cfg_.procRoot;
  oo.extraPaths = cfg_.extraPaths;
  OpenResult r = openDevice(path, oo);
  if (r.fd < 0) {
    if (r.code == "ENODEV") {
      if (!lost_) waiting("ENODEV", r.message + "; waiting for it");
      retryMs_ = kWaitMs;
    } else if (r.code == "EBUSY") {
      fail("EBUSY", r.message);
      retryMs_ = kBusyRetryMs;
    } else {
      fail(r.code, r.message);
      retryMs_ = kRetryMs;
    }
    return false;
  }
  if (lost_ && haveIdentity_ && (r.id.busInfo != identity_.busInfo || r.id.card != identity_.card)) {
    // Another camera took this node number meanwhile.
    ::close(r.fd);
    retryMs_ = kWaitMs;
    return false;
  }
  {
    std::lock_guard<std::mutex> lk(fdMu_);
    fd_ = r.fd;
  }
  rdev_ = r.id.rdev;
  path_ = path;
  identity_ = r.id;
  haveIdentity_ = true;
  if (links_.empty() && path.rfind("/dev/v4l/", 0) != 0) links_ = stableLinks(r.id.rdev);
  if (!configure()) {
    closeDevice();
    return false;
  }
  registerOpen(this, r.id.rdev, formatText(fmt_));
  {
    std::lock_guard<std::mutex> lk(sinksMu_);
    prepared_.clear();
  }
  syncSinks();
  if (!startStream()) {
    closeDevice();
    return false;
  }
  CaptureEvent ev;
  ev.kind = CaptureEvent::Running;
  ev.format = fmt_;
  ev.resumed = lost_;
  lost_ = false;
  lastError_.clear();
  lastWaiting_.clear();
  broadcast(ev);
  return true;
}

bool Capture::configure() {
  std::string cam = "camera " + path_;
  v4l2_format f{};
  f.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
  if (xioctl(fd_, VIDIOC_G_FMT, &f) < 0) {
    int e = errno;
    fail(e == ENODEV ? "ENODEV" : "EIO", "cannot read the format of " + cam + ": " + std::strerror(e));
    retryMs_ = kRetryMs;
    return false;
  }
  if (cfg_.fourcc) f.fmt.pix.pixelformat = cfg_.fourcc;
  if (cfg_.width && cfg_.height) {
    f.fmt.pix.width = cfg_.width;
    f.fmt.pix.height = cfg_.height;
  }
  f.fmt.pix.field = V4L2_FIELD_NONE;
  f.fmt.pix.bytesperline = 0;
  f.fmt.pix.sizeimage = 0;
  if (xioctl(fd_, VIDIOC_S_FMT, &f) < 0) {
    int e = errno;
    if (e == EBUSY) {
      fail("EBUSY", busyMessage("set its format"));
      retryMs_ = kBusyRetryMs;
    } else {
      fail(e == ENODEV ? "ENODEV" : "EINVAL", cam + " refused format " + formatName(cfg_.fourcc) + " " +
                                                  std::to_string(cfg_.width) + "x" + std::to_string(cfg_.height) +
                                                  ": " + std::strerror(e));
      retryMs_ = kRetryMs;
    }
    return false;
  }
  if (cfg_.fourcc && f.fmt.pix.pixelformat != cfg_.fourcc) {
    std::string offered;
    for (const FormatInfo &fi : enumerateFormats(fd_)) offered += (offered.empty() ? "" : ", ") + formatName(fi.fourcc);
    fail("EINVAL", cam + " (\"" + identity_.card + "\") does not offer " + formatName(cfg_.fourcc) + " (it offers " +
                       (offered.empty() ? "nothing" : offered) + ")");
    retryMs_ = kRetryMs;
    return false;
  }
  Negotiated n;
  n.fourcc = f.fmt.pix.pixelformat;
  n.width = f.fmt.pix.width;
  n.height = f.fmt.pix.height;
  n.stride = isCompressed(n.fourcc) ? 0 : f.fmt.pix.bytesperline;
  n.sizeimage = f.fmt.pix.sizeimage ? f.fmt.pix.sizeimage : n.width * n.height * 4;
  v4l2_streamparm p{};
  p.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
  bool haveParm = xioctl(fd_, VIDIOC_G_PARM, &p) == 0;
  if (haveParm && cfg_.tpfNum && cfg_.tpfDen && (p.parm.capture.capability & V4L2_CAP_TIMEPERFRAME)) {
    p.parm.capture.timeperframe.numerator = cfg_.tpfNum;
    p.parm.capture.timeperframe.denominator = cfg_.tpfDen;
    if (xioctl(fd_, VIDIOC_S_PARM, &p) < 0) {
      int e = errno;
      if (e == EBUSY) {
        fail("EBUSY", busyMessage("set its frame rate"));
        retryMs_ = kBusyRetryMs;
        return false;
      }
    }
    haveParm = xioctl(fd_, VIDIOC_G_PARM, &p) == 0;
  }
  if (haveParm && p.parm.capture.timeperframe.denominator) {
    n.tpfNum = p.parm.capture.timeperframe.numerator;
    n.tpfDen = p.parm.capture.timeperframe.denominator;
  }
  intervalNs_ = n.tpfNum && n.tpfDen ? uint64_t(n.tpfNum) * 1000000000ull / n.tpfDen : 33333333ull;
  n.path = path_;
  n.card = identity_.card;
  n.busInfo = identity_.busInfo;
  fmt_ = n;
  // Every remembered control: a camera that was replugged starts from its defaults.
  std::vector<ControlRequest> all;
  {
    std::lock_guard<std::mutex> lk(controlsMu_);
    all = controls_;
    pendingControls_.clear();
    controlsDirty_ = false;
  }
  if (!all.empty()) {
    std::vector<ControlResult> results;
    {
      std::lock_guard<std::mutex> lk(fdMu_);
      results = applyControls(fd_, all);
    }
    for (const ControlResult &r : results)
      if (!r.ok) fail(r.code, "control " + r.name + ": " + r.message);
  }
  return true;
}

void Capture::applyPendingControls() {
  std::vector<ControlRequest> pending;
  {
    std::lock_guard<std::mutex> lk(controlsMu_);
    pending.swap(pendingControls_);
  }
  if (pending.empty() || fd_ < 0) return;
  std::vector<ControlResult> results;
  {
    std::lock_guard<std::mutex> lk(fdMu_);
    results = applyControls(fd_, pending);
  }
  for (const ControlResult &r : results)
    if (!r.ok) fail(r.code, "control " + r.name + ": " + r.message);
}

std::vector<ControlResult> Capture::setControls(const std::vector<ControlRequest> &requests, bool *applied) {
  std::vector<ControlResult> results;
  std::lock_guard<std::mutex> fl(fdMu_);
  *applied = fd_ >= 0;
  if (fd_ >= 0) results = applyControls(fd_, requests);
  // Only what the camera took is worth setting again after a reopen.
  std::vector<ControlRequest> keep;
  for (size_t i = 0; i < requests.size(); i++)
    if (!*applied || (i < results.size() && results[i].ok)) keep.push_back(requests[i]);
  std::lock_guard<std::mutex> lk(controlsMu_);
  mergeControls(&controls_, keep);
  return results;
}

bool Capture::controls(std::vector<ControlInfo> *out) {
  std::lock_guard<std::mutex> lk(fdMu_);
  if (fd_ < 0) return false;
  *out = listControls(fd_);
  return true;
}

std::string Capture::describe() {
  std::lock_guard<std::mutex> lk(openMu);
  auto it = openDevices->find(this);
  return it == openDevices->end() ? "" : it->second.second;
}

Capture::Stats Capture::stats() {
  int m = memoryKind_.load();
  uint64_t hits = 0, misses = 0;
  pool_->counts(&hits, &misses);
  return {frames_.load(), lostFrames_.load(), errors_.load(), restarts_.load(),
          m == 3 ? "userptr" : m == 2 ? "ring" : m == 1 ? "mmap" : "", hits, misses, threadId_.load()};
}

// ---------------------------------------------------------------- streaming

void Capture::syncSinks() {
  CaptureRing *want = nullptr;
  bool blocks = false;
  {
    std::lock_guard<std::mutex> lk(sinksMu_);
    for (auto &s : sinks_) {
      if (std::find(prepared_.begin(), prepared_.end(), s.get()) != prepared_.end()) continue;
      if (fd_ >= 0) s->prepare(fmt_);
      prepared_.push_back(s.get());
    }
    for (auto &s : sinks_) {
      if (std::find(zcRefused_.begin(), zcRefused_.end(), s.get()) != zcRefused_.end()) continue;
      if ((want = s->zeroCopyRing())) break;
    }
    for (auto &s : sinks_) blocks |= s->wantsBlocks();
  }
  if (!streaming_) return;
  // A ring that asks for zero copy came or went, or a sink would keep the
  // driver's blocks: the driver's buffers change. Blocks, once in use, stay:
  // they cost the other sinks nothing.
  if (want != zcRing_ || (!want && blocks && !blocks_ && !blocksRefused_)) restartStream();
}

bool Capture::startUserptr(CaptureRing *ring, const std::shared_ptr<FrameSink> &owner, std::string *why) {
  if (ring->slotSize() < fmt_.sizeimage) {
    *why = "its slots hold " + std::to_string(ring->slotSize()) + " bytes, less than a frame (" +
           std::to_string(fmt_.sizeimage) + ")";
    return false;
  }
  if (ring->slots() < 4) {
    *why = "it has fewer than 4 slots";
    return false;
  }
  // Half the ring at most: the rest stays readable while the driver holds slots.
  uint32_t count = std::max(2u, std::min(cfg_.buffers, ring->slots() / 2));
  v4l2_requestbuffers rb{};
  rb.count = count;
  rb.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
  rb.memory = V4L2_MEMORY_USERPTR;
  if (xioctl(fd_, VIDIOC_REQBUFS, &rb) < 0 || rb.count < 2 || rb.count >= ring->slots()) {
    *why = std::string("the driver does not take user memory (") + (rb.count ? "too many buffers" : std::strerror(errno)) + ")";
    v4l2_requestbuffers none{};
    none.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    none.memory = V4L2_MEMORY_USERPTR;
    xioctl(fd_, VIDIOC_REQBUFS, &none);
    return false;
  }
  bufs_.assign(rb.count, Buffer{});
  memory_ = V4L2_MEMORY_USERPTR;
  zcRing_ = ring;
  ring->abandon();
  uint32_t slotLen = uint32_t(std::min<uint64_t>(ring->slotSize(), 0xfffff000u));
  for (uint32_t i = 0; i < rb.count; i++) {
    uint64_t seq;
    uint8_t *p = ring->claim(&seq);
    v4l2_buffer b{};
    b.index = i;
    b.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    b.memory = V4L2_MEMORY_USERPTR;
    b.m.userptr = reinterpret_cast<unsigned long>(p);
    b.length = slotLen;
    if (xioctl(fd_, VIDIOC_QBUF, &b) < 0) {
      *why = std::string("queuing a ring slot failed: ") + std::strerror(errno);
      stopStream();
      return false;
    }
    bufs_[i].ringSeq = seq;
    bufs_[i].length = slotLen;
  }
  std::lock_guard<std::mutex> lk(sinksMu_);
  zcSink_ = owner;
  return true;
}

bool Capture::startMmap() {
  std::string cam = "camera " + path_;
  v4l2_requestbuffers rb{};
  rb.count = cfg_.buffers;
  rb.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
  rb.memory = V4L2_MEMORY_MMAP;
  if (xioctl(fd_, VIDIOC_REQBUFS, &rb) < 0) {
    int e = errno;
    if (e == EBUSY) {
      fail("EBUSY", busyMessage("allocate buffers"));
      retryMs_ = kBusyRetryMs;
    } else {
      fail(e == ENODEV ? "ENODEV" : "EIO", "cannot allocate buffers on " + cam + ": " + std::strerror(e));
      retryMs_ = kRetryMs;
    }
    return false;
  }
  if (rb.count < 1) {
    fail("ENOMEM", cam + " gave no buffers");
    retryMs_ = kRetryMs;
    return false;
  }
  memory_ = V4L2_MEMORY_MMAP;
  bufs_.assign(rb.count, Buffer{});
  for (uint32_t i = 0; i < rb.count; i++) {
    v4l2_buffer b{};
    b.index = i;
    b.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    b.memory = V4L2_MEMORY_MMAP;
    if (xioctl(fd_, VIDIOC_QUERYBUF, &b) < 0) {
      int e = errno;
      stopStream();
      fail("EIO", "cannot query buffer " + std::to_string(i) + " of " + cam + ": " + std::strerror(e));
      retryMs_ = kRetryMs;
      return false;
    }
    void *p = mmap(nullptr, b.length, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, b.m.offset);
    if (p == MAP_FAILED) {
      int e = errno;
      stopStream();
      fail("EIO", "cannot map buffer " + std::to_string(i) + " of " + cam + ": " + std::strerror(e));
      retryMs_ = kRetryMs;
      return false;
    }
    bufs_[i].addr = p;
    bufs_[i].length = b.length;
    if (xioctl(fd_, VIDIOC_QBUF, &b) < 0) {
      int e = errno;
      stopStream();
      fail("EIO", "cannot queue buffer " + std::to_string(i) + " of " + cam + ": " + std::strerror(e));
      retryMs_ = kRetryMs;
      return false;
    }
  }
  return true;
}

bool Capture::startBlocks(std::string *why) {
  const size_t need = fmt_.sizeimage;
  v4l2_requestbuffers rb{};
  rb.count = cfg_.buffers;
  rb.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
  rb.memory = V4L2_MEMORY_USERPTR;
  if (xioctl(fd_, VIDIOC_REQBUFS, &rb) < 0 || rb.count < 1) {
    *why = std::string("the driver does not take user memory (") + (rb.count ? std::strerror(errno) : "no buffers") + ")";
    v4l2_requestbuffers none{};
    none.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    none.memory = V4L2_MEMORY_USERPTR;
    xioctl(fd_, VIDIOC_REQBUFS, &none);
    return false;
  }
  bufs_.assign(rb.count, Buffer{});
  memory_ = V4L2_MEMORY_USERPTR;
  blocks_ = true;
  for (uint32_t i = 0; i < rb.count; i++) {
    uint8_t *block = pool_->take(need);
    if (!block) {
      *why = "out of memory for frame buffers";
      stopStream();
      return false;
    }
    bufs_[i].addr = block;
    bufs_[i].taken = need;
    bufs_[i].length = BlockPool::capacityOf(block, need);
    v4l2_buffer b{};
    b.index = i;
    b.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    b.memory = V4L2_MEMORY_USERPTR;
    b.m.userptr = reinterpret_cast<unsigned long>(block);
    b.length = uint32_t(bufs_[i].length);
    if (xioctl(fd_, VIDIOC_QBUF, &b) < 0) {
      *why = std::string("queuing user memory failed: ") + std::strerror(errno);
      stopStream();
      return false;
    }
  }
  return true;
}

bool Capture::startStream() {
  CaptureRing *want = nullptr;
  std::shared_ptr<FrameSink> owner;
  {
    std::lock_guard<std::mutex> lk(sinksMu_);
    for (auto &s : sinks_) {
      if (std::find(zcRefused_.begin(), zcRefused_.end(), s.get()) != zcRefused_.end()) continue;
      if ((want = s->zeroCopyRing())) {
        owner = s;
        break;
      }
    }
  }
  bool ok = false;
  if (want) {
    std::string why;
    ok = startUserptr(want, owner, &why);
    if (!ok) {
      std::lock_guard<std::mutex> lk(sinksMu_);
      zcRefused_.push_back(owner.get());
      owner->zeroCopyFailed(why);
    }
  }
  if (!ok && !blocksRefused_) {
    bool blocks = false;
    {
      std::lock_guard<std::mutex> lk(sinksMu_);
      for (auto &s : sinks_) blocks |= s->wantsBlocks();
    }
    std::string why;
    // Without user memory the frames are copied out of the driver's buffers.
    if (blocks && !(ok = startBlocks(&why))) blocksRefused_ = true;
  }
  if (!ok && !startMmap()) return false;
  int type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
  if (xioctl(fd_, VIDIOC_STREAMON, &type) < 0) {
    int e = errno;
    stopStream();
    std::string cam = "camera " + path_;
    if (e == ENOSPC)
      fail("ENOSPC", "not enough USB bandwidth to stream " + formatText(fmt_) + " from " + cam +
                         ": choose MJPEG, a smaller size or a lower frame rate, or move a camera to another USB bus");
    else if (e == EBUSY)
      fail("EBUSY", busyMessage("start streaming"));
    else
      fail(e == ENODEV ? "ENODEV" : "EIO", "cannot start streaming from " + cam + ": " + std::strerror(e));
    retryMs_ = e == EBUSY ? kBusyRetryMs : kRetryMs;
    return false;
  }
  streaming_ = true;
  haveSeq_ = false;
  lastFrameNs_ = clockNs(CLOCK_MONOTONIC);
  fmt_.memory = zcRing_ ? "ring" : blocks_ ? "userptr" : "mmap";
  fmt_.buffers = uint32_t(bufs_.size());
  memoryKind_ = zcRing_ ? 2 : blocks_ ? 3 : 1;
  return true;
}

void Capture::stopStream() {
  if (fd_ >= 0 && streaming_) {
    int type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    xioctl(fd_, VIDIOC_STREAMOFF, &type);
  }
  streaming_ = false;
  if (fd_ >= 0 && !bufs_.empty()) {
    v4l2_requestbuffers none{};
    none.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    none.memory = memory_;
    xioctl(fd_, VIDIOC_REQBUFS, &none);
  }
  // After STREAMOFF and REQBUFS(0) the driver holds none of these.
  for (Buffer &b : bufs_) {
    if (!b.addr) continue;
    if (blocks_) pool_->give(static_cast<uint8_t *>(b.addr), b.taken);
    else munmap(b.addr, b.length);
  }
  bufs_.clear();
  blocks_ = false;
  memoryKind_ = 0;
  if (zcRing_) zcRing_->abandon();
  zcRing_ = nullptr;
  {
    std::lock_guard<std::mutex> lk(sinksMu_);
    zcSink_.reset();
  }
  sinksCv_.notify_all();
}

void Capture::restartStream() {
  restarts_++;
  stopStream();
  if (!startStream()) closeDevice();
}

void Capture::closeDevice() {
  stopStream();
  unregisterOpen(this);
  std::lock_guard<std::mutex> lk(fdMu_);
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  rdev_ = 0;
}

bool Capture::requeue(v4l2_buffer &b) {
  Buffer &buf = bufs_[b.index];
  if (blocks_) {
    if (!buf.addr) {
      // A sink kept the block: the driver gets another.
      buf.taken = fmt_.sizeimage;
      buf.addr = pool_->take(buf.taken);
      if (!buf.addr) {
        fail("ENOMEM", "out of memory for frame buffers");
        closeDevice();
        retryMs_ = kRetryMs;
        return false;
      }
      buf.length = BlockPool::capacityOf(static_cast<uint8_t *>(buf.addr), buf.taken);
    }
    b.m.userptr = reinterpret_cast<unsigned long>(buf.addr);
    b.length = uint32_t(buf.length);
  } else if (memory_ == V4L2_MEMORY_USERPTR) {
    uint64_t seq;
    uint8_t *p = zcRing_->claim(&seq);
    b.m.userptr = reinterpret_cast<unsigned long>(p);
    b.length = uint32_t(buf.length);
    buf.ringSeq = seq;
  }
  if (xioctl(fd_, VIDIOC_QBUF, &b) < 0) {
    int e = errno;
    if (e == ENODEV || deviceGone()) {
      disconnected("unplugged");
      return false;
    }
    errors_++;
    restartStream();
    return fd_ >= 0;
  }
  return true;
}

bool Capture::handle(v4l2_buffer &b, uint64_t dqNs) {
  if (b.index >= bufs_.size()) {
    restartStream();
    return fd_ >= 0;
  }
  Buffer &buf = bufs_[b.index];
  lastFrameNs_ = dqNs;
  stalls_ = 0;
  uint64_t ts = uint64_t(b.timestamp.tv_sec) * 1000000000ull + uint64_t(b.timestamp.tv_usec) * 1000ull;
  bool monotonic = (b.flags & V4L2_BUF_FLAG_TIMESTAMP_MASK) == V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC;
  uint64_t mono = monotonic && ts && ts <= dqNs ? ts : dqNs;
  uint64_t gap = 0;
  if (!haveSeq_ || b.sequence <= lastV4l2Seq_) {
    // The camera's numbering starts again at each STREAMON; ours goes on.
    // Across a restart the frames missed are estimated from the time that
    // passed, so that gaps in seq still count lost frames.
    if (!anyFrame_) {
      gap = b.sequence;
    } else if (mono > lastMonoNs_ && intervalNs_) {
      uint64_t periods = (mono - lastMonoNs_ + intervalNs_ / 2) / intervalNs_;
      gap = periods > 1 ? periods - 1 : 0;
    }
    seqBase_ = anyFrame_ ? int64_t(nextSeq_ + gap) - int64_t(b.sequence) : 0;
    haveSeq_ = true;
  } else {
    gap = b.sequence - lastV4l2Seq_ - 1;
  }
  lastV4l2Seq_ = b.sequence;
  lastMonoNs_ = mono;
  uint64_t seq = uint64_t(seqBase_ + int64_t(b.sequence));
  nextSeq_ = seq + 1;
  anyFrame_ = true;
  lostFrames_ += gap;

  if (b.flags & V4L2_BUF_FLAG_ERROR) {
    errors_++;
    lostFrames_++;
    // A ring slot cannot be skipped without breaking the order of the slots
    // queued after it: start the stream again.
    if (zcRing_) {
      restartStream();
      return fd_ >= 0;
    }
    return requeue(b);
  }
  if (zcRing_ && buf.ringSeq != zcRing_->committed() + 1) {
    errors_++;
    restartStream();
    return fd_ >= 0;
  }

  FrameView f;
  f.data = zcRing_ ? reinterpret_cast<const uint8_t *>(b.m.userptr) : static_cast<const uint8_t *>(buf.addr);
  f.bytes = b.bytesused ? b.bytesused : (isCompressed(fmt_.fourcc) ? 0 : fmt_.sizeimage);
  if (f.bytes > buf.length) f.bytes = uint32_t(buf.length);
  f.seq = seq;
  f.dqbufNs = dqNs;
  f.monotonicNs = mono;
  uint64_t nowReal = clockNs(CLOCK_REALTIME);
  uint64_t nowMono = clockNs(CLOCK_MONOTONIC);
  f.realtimeNs = nowReal - (nowMono - f.monotonicNs);
  f.lost = lostFrames_;
  f.format = &fmt_;
  if (zcRing_) {
    f.ring = zcRing_;
    f.ringSeq = buf.ringSeq;
  }
  {
    std::lock_guard<std::mutex> lk(sinksMu_);
    frames_++;
    // A sink that joined since the last look gets frames once it is prepared.
    // One that may keep the block comes last: the others copy from it first.
    FrameSink *keeper = nullptr;
    for (auto &s : sinks_) {
      if (std::find(prepared_.begin(), prepared_.end(), s.get()) == prepared_.end()) continue;
      if (blocks_ && !keeper && s->wantsBlocks()) keeper = s.get();
      else s->frame(f);
    }
    if (keeper && keeper->takeBlock(f, static_cast<uint8_t *>(buf.addr), buf.taken, pool_)) buf.addr = nullptr;
    if (f.ring && zcRing_->committed() < f.ringSeq) {
      // The ring's owner did not publish it (it failed): keep the order anyway.
      try {
        zcRing_->commit(f.ringSeq, f.bytes, "", f.realtimeNs, f.monotonicNs);
      } catch (const RingError &) {
      }
    }
  }
  return requeue(b);
}

bool Capture::dequeue() {
  // One frame per wake-up: when more are ready poll returns at once, and
  // when none is, a second DQBUF would only answer EAGAIN.
  for (size_t i = 0; i < 1 && streaming_; i++) {
    v4l2_buffer b{};
    b.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    b.memory = memory_;
    if (xioctl(fd_, VIDIOC_DQBUF, &b) < 0) {
      int e = errno;
      if (e == EAGAIN) return true;
      if (e == ENODEV || ((e == EIO || e == EINVAL || e == EPIPE) && deviceGone())) {
        disconnected(e == ENODEV ? "unplugged" : std::strerror(e));
        return false;
      }
      if (e == EIO) {
        // One frame failed; the driver requeued its buffer. With ring slots
        // queued, the slots would come back out of order: start again.
        // The gap it leaves in the sequence counts it as lost.
        errors_++;
        if (zcRing_) restartStream();
        if (fd_ < 0) return false;
        continue;
      }
      if (e == EINVAL || e == EPIPE) {
        restartStream();
        return fd_ >= 0;
      }
      fail("EIO", "reading a frame from camera " + path_ + " failed: " + std::strerror(e));
      closeDevice();
      retryMs_ = kRetryMs;
      return false;
    }
    if (!handle(b, clockNs(CLOCK_MONOTONIC))) return false;
  }
  return true;
}

void Capture::run() {
  pthread_setname_np(pthread_self(), "dp-v4l2");
  threadId_ = int(syscall(SYS_gettid));
  while (!stopping()) {
    if (fd_ < 0) {
      if (retryMs_ > 0 && !sleepFor(retryMs_)) break;
      retryMs_ = 0;
      if (!openAndStart() && retryMs_ == 0) retryMs_ = kWaitMs;
      continue;
    }
    if (sinksChanged_.exchange(false)) syncSinks();
    if (controlsDirty_.exchange(false)) applyPendingControls();
    if (fd_ < 0) continue;
    if (!streaming_ && !startStream()) {
      closeDevice();
      continue;
    }
    pollfd p[2] = {{fd_, POLLIN, 0}, {wakeFd_, POLLIN, 0}};
    int rc = ::poll(p, 2, kPollMs);
    if (rc < 0) {
      if (errno == EINTR) continue;
      fail("EIO", "waiting for camera " + path_ + " failed: " + std::strerror(errno));
      closeDevice();
      retryMs_ = kRetryMs;
      continue;
    }
    if (p[1].revents) {
      uint64_t v;
      ssize_t ignored = ::read(wakeFd_, &v, sizeof(v));
      (void)ignored;
    }
    if (stopping()) break;
    if (p[0].revents) {
      uint64_t before = frames_;
      if (!dequeue()) continue;
      // poll reports an error (no buffer queued, device in trouble) but
      // nothing came: do not spin on it.
      if (frames_ == before && (p[0].revents & (POLLERR | POLLHUP))) {
        if (deviceGone()) {
          disconnected("unplugged");
          continue;
        }
        if (!sleepFor(10)) break;
      }
    }
    if (!streaming_) continue;
    uint64_t now = clockNs(CLOCK_MONOTONIC);
    uint64_t stallNs = std::max<uint64_t>(3000000000ull, 4 * intervalNs_);
    if (now - lastFrameNs_ > stallNs) {
      // A camera that stops delivering without an error (some after a USB
      // hub reset): start the stream again, then reopen the device.
      if (stalls_++ == 0) {
        restartStream();
      } else {
        disconnected("no frame for " + std::to_string(stallNs / 1000000000ull) + " s");
      }
    }
  }
  closeDevice();
  {
    std::lock_guard<std::mutex> lk(sinksMu_);
    threadDone_ = true;
  }
  sinksCv_.notify_all();
}

// ---------------------------------------------------------------- registry

namespace {
// Never destroyed: captures may still be stopping while the process exits.
auto *registry = new CaptureRegistry<Capture>();
}  // namespace

std::shared_ptr<Capture> subscribeCapture(const CaptureConfig &cfg, const std::shared_ptr<FrameSink> &sink,
                                          const std::vector<ControlRequest> &controls) {
  return registry->subscribe(cfg, [&](Capture &c) { c.add(sink, controls); });
}

void releaseCapture(const std::shared_ptr<Capture> &capture, const std::shared_ptr<FrameSink> &sink) {
  registry->release(capture, sink);
}

size_t activeCaptures() { return registry->active(); }

}  // namespace v4l2
}  // namespace devplane
