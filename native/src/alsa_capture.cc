#include "alsa_capture.h"
#include "capture_registry.h"
#include "proc_holders.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>

namespace devplane {

namespace {

constexpr unsigned kMaxChannels = 32;
// Silence has no logarithm; this floor is below what 32-bit samples resolve.
constexpr double kFloorDbfs = -120.0;
constexpr int kPollMs = 500;
constexpr int kRetryMs = 2000;
constexpr int kReconnectMs = 1000;

uint64_t clockNs(clockid_t clk) {
  timespec ts;
  clock_gettime(clk, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

double dbfs(double ratio) {
  if (!(ratio > 0)) return kFloorDbfs;
  double db = 20.0 * std::log10(ratio);
  if (db < kFloorDbfs) db = kFloorDbfs;
  return std::round(db * 100.0) / 100.0;
}

// The same for a mean square: 10 log10 of it, with no square root on the way.
double powerDbfs(double meanSquare) {
  if (!(meanSquare > 0)) return kFloorDbfs;
  double db = 10.0 * std::log10(meanSquare);
  if (db < kFloorDbfs) db = kFloorDbfs;
  return std::round(db * 100.0) / 100.0;
}

inline int32_t load16(const uint8_t *p) { return int16_t(uint16_t(p[0]) | uint16_t(p[1]) << 8); }
inline int32_t load32(const uint8_t *p) {
  return int32_t(uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24);
}
inline float loadFloat(const uint8_t *p) {
  uint32_t bits = uint32_t(load32(p));
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

#if defined(__GNUC__) && (defined(__clang__) || __GNUC__ >= 9) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define DP_VECTOR_LEVELS 1
typedef int16_t v8s __attribute__((vector_size(16)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef float v8f __attribute__((vector_size(32)));

// S16 sums of squares and extremes over lanes of 8 consecutive samples, so
// that lane j always holds channel j % channels (channels divides 8). Four
// accumulators keep the additions independent; floats are exact enough for
// a 0.01 dB meter and are folded into doubles every 256 steps. This is most
// of the capture thread's work per chunk, hence the vectors (SSE2 and NEON
// both take them).
void s16Lanes(const uint8_t *p, size_t samples, double *sum, int32_t *hi, int32_t *lo) {
  v8s vhi = {}, vlo = {};
  for (unsigned j = 0; j < 8; j++) sum[j] = 0;
  size_t i = 0;
  const size_t whole = samples & ~size_t(31);
  while (i < whole) {
    v8f a0 = {}, a1 = {}, a2 = {}, a3 = {};
    const size_t end = std::min(whole, i + 32 * 256);
    for (; i < end; i += 32) {
      v8s v0, v1, v2, v3;
      std::memcpy(&v0, p + 2 * i, 16);
      std::memcpy(&v1, p + 2 * i + 16, 16);
      std::memcpy(&v2, p + 2 * i + 32, 16);
      std::memcpy(&v3, p + 2 * i + 48, 16);
      vhi = v0 > vhi ? v0 : vhi;
      vlo = v0 < vlo ? v0 : vlo;
      vhi = v1 > vhi ? v1 : vhi;
      vlo = v1 < vlo ? v1 : vlo;
      vhi = v2 > vhi ? v2 : vhi;
      vlo = v2 < vlo ? v2 : vlo;
      vhi = v3 > vhi ? v3 : vhi;
      vlo = v3 < vlo ? v3 : vlo;
      v8f f0 = __builtin_convertvector(__builtin_convertvector(v0, v8i), v8f);
      v8f f1 = __builtin_convertvector(__builtin_convertvector(v1, v8i), v8f);
      v8f f2 = __builtin_convertvector(__builtin_convertvector(v2, v8i), v8f);
      v8f f3 = __builtin_convertvector(__builtin_convertvector(v3, v8i), v8f);
      a0 += f0 * f0;
      a1 += f1 * f1;
      a2 += f2 * f2;
      a3 += f3 * f3;
    }
    v8f a = (a0 + a1) + (a2 + a3);
    for (unsigned j = 0; j < 8; j++) sum[j] += a[j];
  }
  for (unsigned j = 0; j < 8; j++) {
    hi[j] = vhi[j];
    lo[j] = vlo[j];
  }
  for (; i < samples; i++) {
    int32_t v = load16(p + 2 * i);
    unsigned j = unsigned(i & 7);
    sum[j] += double(v) * v;
    hi[j] = std::max(hi[j], v);
    lo[j] = std::min(lo[j], v);
  }
}
#endif

// RMS and peak per channel, in dBFS, where 1.0 (or the integer full scale) is
// 0 dBFS: a full-scale sine reads -3.01 dBFS RMS and 0 dBFS peak.
void computeLevels(SampleFormat format, const uint8_t *p, unsigned frames, unsigned channels, double *rms,
                   double *peak) {
  double sum[kMaxChannels];
  double top[kMaxChannels];
  for (unsigned c = 0; c < channels; c++) sum[c] = top[c] = 0;
  if (format == SampleFormat::S16_LE) {
#ifdef DP_VECTOR_LEVELS
    if (8 % channels == 0) {
      double lane[8];
      int32_t hi[8], lo[8];
      s16Lanes(p, size_t(frames) * channels, lane, hi, lo);
      for (unsigned j = 0; j < 8; j++) {
        unsigned c = j % channels;
        sum[c] += lane[j];
        top[c] = std::max(top[c], double(std::max(hi[j], -lo[j])));
      }
      for (unsigned c = 0; c < channels; c++) {
        sum[c] /= 32768.0 * 32768.0;
        top[c] /= 32768.0;
      }
    } else
#endif
    {
      int64_t isum[kMaxChannels] = {};
      int32_t itop[kMaxChannels] = {};
      for (unsigned i = 0; i < frames; i++) {
        for (unsigned c = 0; c < channels; c++, p += 2) {
          int32_t v = load16(p);
          isum[c] += int64_t(v) * v;
          int32_t a = v < 0 ? -v : v;
          if (a > itop[c]) itop[c] = a;
        }
      }
      for (unsigned c = 0; c < channels; c++) {
        sum[c] = double(isum[c]) / (32768.0 * 32768.0);
        top[c] = itop[c] / 32768.0;
      }
    }
  } else if (format == SampleFormat::S32_LE) {
    for (unsigned i = 0; i < frames; i++) {
      for (unsigned c = 0; c < channels; c++, p += 4) {
        double v = load32(p) / 2147483648.0;
        sum[c] += v * v;
        double a = std::fabs(v);
        if (a > top[c]) top[c] = a;
      }
    }
  } else {
    for (unsigned i = 0; i < frames; i++) {
      for (unsigned c = 0; c < channels; c++, p += 4) {
        double v = loadFloat(p);
        if (!std::isfinite(v)) continue;  // a broken driver must not poison the meter
        sum[c] += v * v;
        double a = std::fabs(v);
        if (a > top[c]) top[c] = a;
      }
    }
  }
  for (unsigned c = 0; c < channels; c++) {
    rms[c] = powerDbfs(frames ? sum[c] / frames : 0);
    peak[c] = dbfs(top[c]);
  }
}

std::string quoted(const std::string &s) { return "\"" + s + "\""; }

bool allDigits(const std::string &s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string unquote(std::string v) {
  if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) v = v.substr(1, v.size() - 2);
  return v;
}

// The card and device behind names such as hw:1,0, plughw:CARD=Device,DEV=0 or
// dsnoop:1; card -1 when the name does not say (default, pulse, dsnoop).
void cardAndDevice(const alsa::Api *api, const std::string &name, int *card, int *device) {
  *card = -1;
  *device = 0;
  size_t colon = name.find(':');
  if (colon == std::string::npos) return;
  std::string args = name.substr(colon + 1);
  std::string cardText, devText;
  int position = 0;
  size_t start = 0;
  while (start <= args.size()) {
    size_t comma = args.find(',', start);
    std::string part = args.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    size_t eq = part.find('=');
    if (eq != std::string::npos) {
      std::string key = part.substr(0, eq);
      if (key == "CARD") cardText = unquote(part.substr(eq + 1));
      if (key == "DEV") devText = unquote(part.substr(eq + 1));
    } else if (position == 0) {
      cardText = unquote(part);
    } else if (position == 1) {
      devText = unquote(part);
    }
    position++;
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (cardText.empty()) return;
  if (allDigits(cardText)) {
    *card = std::atoi(cardText.c_str());
  } else if (api) {
    *card = api->card_get_index(cardText.c_str());
    if (*card < 0) *card = -1;
  }
  if (allDigits(devText)) *device = std::atoi(devText.c_str());
}

std::string plugHint(const std::string &device) {
  if (device.rfind("hw:", 0) == 0) return "; plug" + device + " converts to what you ask for";
  return "";
}

}  // namespace

const char *sampleFormatName(SampleFormat f) {
  switch (f) {
    case SampleFormat::S16_LE: return "S16_LE";
    case SampleFormat::S32_LE: return "S32_LE";
    case SampleFormat::FLOAT_LE: return "FLOAT_LE";
  }
  return "?";
}

const char *sampleFormatCaps(SampleFormat f) {
  switch (f) {
    case SampleFormat::S16_LE: return "S16LE";
    case SampleFormat::S32_LE: return "S32LE";
    case SampleFormat::FLOAT_LE: return "F32LE";
  }
  return "?";
}

unsigned sampleBytes(SampleFormat f) { return f == SampleFormat::S16_LE ? 2 : 4; }

bool parseSampleFormat(const std::string &name, SampleFormat *out) {
  if (name == "S16_LE") *out = SampleFormat::S16_LE;
  else if (name == "S32_LE") *out = SampleFormat::S32_LE;
  else if (name == "FLOAT_LE") *out = SampleFormat::FLOAT_LE;
  else return false;
  return true;
}

static int alsaFormat(SampleFormat f) {
  switch (f) {
    case SampleFormat::S16_LE: return alsa::SND_PCM_FORMAT_S16_LE;
    case SampleFormat::S32_LE: return alsa::SND_PCM_FORMAT_S32_LE;
    case SampleFormat::FLOAT_LE: return alsa::SND_PCM_FORMAT_FLOAT_LE;
  }
  return alsa::SND_PCM_FORMAT_S16_LE;
}

std::string CaptureConfig::key() const {
  return device + '\n' + std::to_string(rate) + '/' + std::to_string(channels) + '/' + sampleFormatName(format) + '/' +
         std::to_string(chunkFrames) + '/' + std::to_string(periodFrames) + '/' + std::to_string(bufferFrames) + '/' +
         std::to_string(batchChunks) + '\n' + procRoot;
}

std::vector<DeviceHolder> findCaptureHolders(const std::string &procRoot, int card, int device) {
  std::string exact = card >= 0 ? "/dev/snd/pcmC" + std::to_string(card) + "D" + std::to_string(device) + "c" : "";
  return processesHolding(procRoot, [&](const std::string &t) {
    return !exact.empty() ? t == exact
                          : t.rfind("/dev/snd/pcmC", 0) == 0 && t.back() == 'c' && t.find('D') != std::string::npos;
  });
}

// ---------------------------------------------------------------- BlockPool

namespace {
// Enough for every sink's queue to hold blocks while more are read.
constexpr size_t kPoolKeep = 64;
}  // namespace

BlockPool::~BlockPool() {
  for (uint8_t *b : free_) std::free(b);
}

uint8_t *BlockPool::take() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!free_.empty()) {
      uint8_t *b = free_.back();
      free_.pop_back();
      return b;
    }
  }
  return static_cast<uint8_t *>(std::malloc(bytes_));
}

void BlockPool::give(uint8_t *block) {
  if (!block) return;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (free_.size() < kPoolKeep) {
      free_.push_back(block);
      return;
    }
  }
  std::free(block);
}

// ---------------------------------------------------------------- Capture

Capture::Capture(const CaptureConfig &cfg) : cfg_(cfg) {
  stopFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stopFd_ < 0) throw std::runtime_error(std::string("cannot create an eventfd: ") + std::strerror(errno));
}

Capture::~Capture() {
  stop();
  if (stopFd_ >= 0) ::close(stopFd_);
}

uint64_t Capture::add(const std::shared_ptr<CaptureSink> &sink) {
  std::lock_guard<std::mutex> lk(sinksMu_);
  sinks_.push_back(sink);
  if (haveState_) sink->event(lastState_);
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
  return overruns_;
}

bool Capture::remove(const std::shared_ptr<CaptureSink> &sink) {
  // Outside the lock: the capture thread may be waiting for this sink's
  // space, and it waits without holding the lock.
  sink->cancel();
  std::lock_guard<std::mutex> lk(sinksMu_);
  sinks_.erase(std::remove(sinks_.begin(), sinks_.end(), sink), sinks_.end());
  return sinks_.empty();
}

void Capture::stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  uint64_t one = 1;
  ssize_t ignored = ::write(stopFd_, &one, sizeof(one));
  (void)ignored;
  thread_.join();
}

bool Capture::stopping() const { return stop_.load(std::memory_order_relaxed); }

bool Capture::sleepFor(int ms) {
  pollfd p{stopFd_, POLLIN, 0};
  return ::poll(&p, 1, ms) == 0;
}

void Capture::broadcast(const CaptureEvent &ev) {
  std::lock_guard<std::mutex> lk(sinksMu_);
  lastState_ = ev;
  haveState_ = true;
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

void Capture::disconnected(const std::string &why) {
  flushHeld();
  closeDevice();
  if (lost_) return;
  lost_ = true;
  lastError_.clear();
  CaptureEvent ev;
  ev.kind = CaptureEvent::Disconnected;
  ev.code = "ENODEV";
  ev.message = "ALSA device " + quoted(cfg_.device) + " disconnected (" + why + "); waiting for it to come back";
  broadcast(ev);
}

std::string Capture::describeOpenError(int err, std::string *code) {
  std::string said = alsa::takeLastMessage();
  std::string dev = quoted(cfg_.device);
  std::string detail = said.empty() ? api_->strerror(err) : said;
  switch (-err) {
    case EBUSY: {
      *code = "EBUSY";
      int card, device;
      cardAndDevice(api_, cfg_.device, &card, &device);
      std::vector<DeviceHolder> holders = findCaptureHolders(cfg_.procRoot, card, device);
      std::string msg = "ALSA device " + dev + " is busy";
      if (holders.empty())
        return msg + ": another program is capturing from it (one this user cannot see; run "
                     "\"sudo fuser -v /dev/snd/*\" to find it)";
      msg += ": held by ";
      bool self = false;
      for (size_t i = 0; i < holders.size(); i++) {
        if (i) msg += ", ";
        msg += holders[i].command + " (pid " + std::to_string(holders[i].pid) + ")";
        self |= holders[i].pid == int(getpid());
      }
      if (self)
        msg += "; this Node-RED holds it through another alsa-capture node with different settings: give the "
               "nodes the same settings to share one capture";
      return msg;
    }
    case ENOENT:
    case ENODEV:
    case ENXIO:
      *code = "ENODEV";
      return "ALSA device " + dev + " was not found (" + detail +
             "). Is the microphone plugged in? \"arecord -L\" lists the names that work";
    case EACCES:
    case EPERM:
      *code = "EACCES";
      return "permission denied opening ALSA device " + dev +
             ": add the user running Node-RED to the audio group (sudo usermod -aG audio $USER) and restart it";
    default:
      *code = "EIO";
      return "cannot open ALSA device " + dev + ": " + detail;
  }
}

bool Capture::configure(std::string *code, std::string *message) {
  const alsa::Api *a = api_;
  std::string dev = quoted(cfg_.device);
  *code = "EINVAL";
  alsa::snd_pcm_hw_params_t *hw = nullptr;
  alsa::snd_pcm_sw_params_t *sw = nullptr;
  auto done = [&](bool ok) {
    if (hw) a->hw_params_free(hw);
    if (sw) a->sw_params_free(sw);
    return ok;
  };
  if (a->hw_params_malloc(&hw) < 0 || a->sw_params_malloc(&sw) < 0) {
    *message = "out of memory configuring " + dev;
    return done(false);
  }
  int rc = a->hw_params_any(pcm_, hw);
  if (rc < 0) {
    *message = "cannot read what " + dev + " supports: " + a->strerror(rc);
    return done(false);
  }
  if (a->hw_params_set_access(pcm_, hw, alsa::SND_PCM_ACCESS_RW_INTERLEAVED) < 0) {
    *message = dev + " does not offer interleaved capture" + plugHint(cfg_.device);
    return done(false);
  }
  if (a->hw_params_set_format(pcm_, hw, alsaFormat(cfg_.format)) < 0) {
    std::string offered;
    for (SampleFormat f : {SampleFormat::S16_LE, SampleFormat::S32_LE, SampleFormat::FLOAT_LE}) {
      if (a->hw_params_test_format(pcm_, hw, alsaFormat(f)) == 0) offered += std::string(offered.empty() ? "" : ", ") + sampleFormatName(f);
    }
    *message = dev + " cannot capture " + sampleFormatName(cfg_.format) + " samples (it offers " +
               (offered.empty() ? "none of S16_LE, S32_LE, FLOAT_LE" : offered) + ")" + plugHint(cfg_.device);
    return done(false);
  }
  if (a->hw_params_set_channels(pcm_, hw, cfg_.channels) < 0) {
    unsigned lo = 0, hi = 0;
    a->hw_params_get_channels_min(hw, &lo);
    a->hw_params_get_channels_max(hw, &hi);
    *message = dev + " captures " + (lo == hi ? std::to_string(lo) : std::to_string(lo) + " to " + std::to_string(hi)) +
               " channels, not " + std::to_string(cfg_.channels) + plugHint(cfg_.device);
    return done(false);
  }
  unsigned rate = cfg_.rate;
  int dir = 0;
  rc = a->hw_params_set_rate_near(pcm_, hw, &rate, &dir);
  if (rc < 0 || rate != cfg_.rate) {
    *message = dev + " cannot capture at " + std::to_string(cfg_.rate) + " Hz" +
               (rc < 0 ? "" : " (the nearest it offers is " + std::to_string(rate) + " Hz)") + plugHint(cfg_.device);
    return done(false);
  }
  // Buffer first, then period, as arecord does: the buffer is the hard limit
  // on how late the thread may be, the period only how often it wakes.
  alsa::snd_pcm_uframes_t buffer = cfg_.bufferFrames;
  a->hw_params_set_buffer_size_near(pcm_, hw, &buffer);
  alsa::snd_pcm_uframes_t period = cfg_.periodFrames;
  dir = 0;
  a->hw_params_set_period_size_near(pcm_, hw, &period, &dir);
  rc = a->hw_params(pcm_, hw);
  if (rc < 0) {
    *message = "cannot configure " + dev + " (period " + std::to_string(cfg_.periodFrames) + ", buffer " +
               std::to_string(cfg_.bufferFrames) + " frames): " + a->strerror(rc);
    return done(false);
  }
  a->hw_params_get_period_size(hw, &period, &dir);
  a->hw_params_get_buffer_size(hw, &buffer);
  period_ = unsigned(period);
  buffer_ = unsigned(buffer);
  rc = a->sw_params_current(pcm_, sw);
  if (rc >= 0) rc = a->sw_params_set_avail_min(pcm_, sw, period);
  if (rc >= 0) rc = a->sw_params_set_start_threshold(pcm_, sw, 1);
  if (rc >= 0) rc = a->sw_params(pcm_, sw);
  if (rc < 0) {
    *message = "cannot set the wake-up threshold of " + dev + ": " + a->strerror(rc);
    return done(false);
  }
  // Started now rather than by the first read: a capture that has not started
  // never becomes readable, and the thread waits in poll().
  rc = a->pcm_start(pcm_);
  if (rc < 0) {
    *code = "EIO";
    *message = "cannot start capture on " + dev + ": " + a->strerror(rc);
    return done(false);
  }
  return done(true);
}

bool Capture::openDevice() {
  alsa::takeLastMessage();
  alsa::snd_pcm_t *p = nullptr;
  int rc = api_->pcm_open(&p, cfg_.device.c_str(), alsa::SND_PCM_STREAM_CAPTURE, alsa::SND_PCM_NONBLOCK);
  if (rc < 0) {
    std::string code;
    std::string message = describeOpenError(rc, &code);
    // While unplugged, "not found" is the expected answer, already reported.
    if (!(lost_ && code == "ENODEV")) fail(code, message);
    return false;
  }
  pcm_ = p;
  std::string code, message;
  if (!configure(&code, &message)) {
    closeDevice();
    fail(code, message);
    return false;
  }
  CaptureEvent ev;
  ev.kind = CaptureEvent::Running;
  ev.periodFrames = period_;
  ev.bufferFrames = buffer_;
  ev.resumed = lost_;
  lost_ = false;
  lastError_.clear();
  broadcast(ev);
  return true;
}

void Capture::closeDevice() {
  if (pcm_) api_->pcm_close(pcm_);
  pcm_ = nullptr;
}

void Capture::deliver(uint32_t count, size_t leftoverFrames) {
  const unsigned channels = cfg_.channels;
  const unsigned stride = chunkStride(channels);
  const size_t chunkBytes = cfg_.chunkBytes();
  uint64_t nowMono = clockNs(CLOCK_MONOTONIC);
  uint64_t nowReal = clockNs(CLOCK_REALTIME);
  alsa::snd_pcm_sframes_t pending = api_->pcm_avail_update(pcm_);
  if (pending < 0) pending = 0;

  ChunkBlock b;
  b.data = block_;
  b.pool = pool_;
  b.chunkBytes = chunkBytes;
  b.count = count;
  // The rows' memory is kept from block to block.
  b.info.swap(info_);
  b.info.resize(size_t(count) * stride);
  for (uint32_t k = 0; k < count; k++) {
    double *row = &b.info[size_t(k) * stride];
    // The chunk's first frame was captured this long ago: it, the chunks
    // after it, and what still waits in the device's buffer.
    uint64_t framesSince = uint64_t(count - k) * cfg_.chunkFrames + leftoverFrames + uint64_t(pending);
    uint64_t ago = framesSince * 1000000000ull / cfg_.rate;
    uint64_t mono = nowMono > ago ? nowMono - ago : 0;
    // A late read makes the estimate jump; time must still move forward.
    if (mono <= lastMonotonicNs_) mono = lastMonotonicNs_ + 1;
    lastMonotonicNs_ = mono;
    uint64_t real = nowReal - (nowMono - mono);
    row[kSeq] = double(++seq_);
    row[kMonotonicNs] = double(mono);
    row[kRealtimeMs] = double(real / 1000) / 1000.0;
    row[kReadNs] = double(nowMono);
    row[kOverruns] = double(overruns_);
    computeLevels(cfg_.format, block_ + k * chunkBytes, cfg_.chunkFrames, channels, row + kLevels,
                  row + kLevels + channels);
  }

  // The partial chunk after the complete ones moves to the next block before
  // any sink can own (and free) this one.
  uint8_t *next = nullptr;
  size_t leftoverBytes = leftoverFrames * cfg_.frameBytes();
  if (leftoverBytes) {
    next = pool_->take();
    if (next) std::memcpy(next, block_ + size_t(count) * chunkBytes, leftoverBytes);
    else leftoverBytes = 0;
  }

  {
    std::lock_guard<std::mutex> lk(sinksMu_);
    waitOn_.assign(sinks_.begin(), sinks_.end());
  }
  // Half the device's buffer: a flow that stalls longer loses its oldest
  // chunks rather than making the device overrun for every listener.
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::microseconds(std::max<uint64_t>(20000, uint64_t(buffer_) * 500000ull / cfg_.rate));
  for (auto &s : waitOn_) s->waitForSpace(count, deadline);
  waitOn_.clear();
  {
    std::lock_guard<std::mutex> lk(sinksMu_);
    for (size_t i = 0; i < sinks_.size(); i++) {
      b.mayTake = i + 1 == sinks_.size();
      sinks_[i]->chunks(b);
    }
  }

  info_.swap(b.info);
  if (!b.taken) {
    // Nobody took the block: keep using it.
    if (next) std::memcpy(block_, next, leftoverBytes);
    pool_->give(next);
  } else {
    block_ = next ? next : pool_->take();
  }
  filled_ = block_ ? leftoverBytes / cfg_.frameBytes() : 0;
}

void Capture::flushHeld() {
  if (!pcm_ || !block_) return;
  uint32_t complete = uint32_t(filled_ / cfg_.chunkFrames);
  if (complete) deliver(complete, filled_ - size_t(complete) * cfg_.chunkFrames);
  filled_ = 0;
}

void Capture::run() {
  pthread_setname_np(pthread_self(), "dp-alsa");
  std::string loadError;
  for (;;) {
    api_ = alsa::load(&loadError);
    if (api_) break;
    fail("ENOLIB", loadError);
    if (!sleepFor(5000)) return;
  }

  const unsigned chunk = cfg_.chunkFrames;
  const size_t frameBytes = cfg_.frameBytes();
  // Several chunks per read when the device has that much waiting (a flow
  // that fell behind, or a source faster than real time) saves system calls.
  blockChunks_ = std::max({1u, cfg_.batchChunks, std::min(32u, cfg_.bufferFrames / std::max(1u, chunk))});
  pool_ = std::make_shared<BlockPool>(size_t(blockChunks_) * cfg_.chunkBytes());
  std::vector<pollfd> pfds;
  unsigned npcm = 0;
  auto lastData = std::chrono::steady_clock::now();

  while (!stopping()) {
    if (!block_) {
      block_ = pool_->take();
      filled_ = 0;
      if (!block_) {
        fail("ENOMEM", "out of memory for audio from " + quoted(cfg_.device));
        if (!sleepFor(kRetryMs)) break;
        continue;
      }
    }
    if (!pcm_) {
      if (!openDevice()) {
        if (!sleepFor(lost_ ? kReconnectMs : kRetryMs)) break;
        continue;
      }
      int n = api_->pcm_poll_descriptors_count(pcm_);
      npcm = n > 0 ? unsigned(n) : 0;
      pfds.assign(npcm + 1, pollfd{});
      if (npcm) api_->pcm_poll_descriptors(pcm_, pfds.data(), npcm);
      pfds[npcm] = pollfd{stopFd_, POLLIN, 0};
      filled_ = 0;
      lastData = std::chrono::steady_clock::now();
    }

    size_t want = size_t(blockChunks_) * chunk - filled_;
    alsa::snd_pcm_sframes_t n = api_->pcm_readi(pcm_, block_ + filled_ * frameBytes, want);
    if (n > 0) {
      filled_ += size_t(n);
      lastData = std::chrono::steady_clock::now();
      uint32_t complete = uint32_t(filled_ / chunk);
      if (complete && complete >= cfg_.batchChunks) deliver(complete, filled_ - size_t(complete) * chunk);
      // A full read means more may be waiting; a short one took all there was.
      if (size_t(n) == want) continue;
      n = -EAGAIN;
    }
    if (n == 0 || n == -EAGAIN) {
      for (auto &p : pfds) p.revents = 0;
      int rc = ::poll(pfds.data(), npcm + 1, kPollMs);
      if (pfds[npcm].revents) break;
      if (rc < 0) {
        if (errno == EINTR) continue;
        fail("EIO", "waiting for ALSA device " + quoted(cfg_.device) + " failed: " + std::strerror(errno));
        flushHeld();
        closeDevice();
        if (!sleepFor(kRetryMs)) break;
        continue;
      }
      if (rc <= 0) {
        // A device that stops delivering without an error (some USB
        // microphones after a hub reset) is reopened like an unplugged one.
        auto stallMs = std::max<uint64_t>(2000, uint64_t(buffer_) * 4000ull / cfg_.rate);
        if (std::chrono::steady_clock::now() - lastData > std::chrono::milliseconds(stallMs))
          disconnected("no audio for " + std::to_string(stallMs / 1000) + " s");
        continue;
      }
      unsigned short revents = 0;
      api_->pcm_poll_descriptors_revents(pcm_, pfds.data(), npcm, &revents);
      if (!(revents & (POLLERR | POLLNVAL | POLLHUP))) continue;
      int state = api_->pcm_state(pcm_);
      if (state == alsa::SND_PCM_STATE_DISCONNECTED) {
        disconnected("unplugged");
        continue;
      }
      if (state == alsa::SND_PCM_STATE_XRUN) n = -EPIPE;
      else if (state == alsa::SND_PCM_STATE_SUSPENDED) n = -ESTRPIPE;
      else continue;
    }
    if (n == -EPIPE || n == -ESTRPIPE) {
      // An overrun (the thread was late by a whole buffer) or a suspend:
      // what comes next does not join up with what was read, so the chunks
      // held for a batch go now and a partial one is dropped.
      flushHeld();
      if (n == -EPIPE) overruns_++;
      int rc = api_->pcm_recover(pcm_, int(n), 1);
      // A resumed device is running again; one recovered by prepare needs a start.
      if (rc >= 0 && api_->pcm_state(pcm_) == alsa::SND_PCM_STATE_PREPARED) rc = api_->pcm_start(pcm_);
      if (rc < 0) disconnected(std::string("cannot recover: ") + api_->strerror(rc));
      continue;
    }
    if (n == -ENODEV || n == -EIO || n == -EBADFD || n == -ENXIO || n == -ESHUTDOWN) {
      disconnected(api_->strerror(int(n)));
      continue;
    }
    fail("EIO", "reading from ALSA device " + quoted(cfg_.device) + " failed: " + api_->strerror(int(n)));
    flushHeld();
    closeDevice();
    if (!sleepFor(kRetryMs)) break;
  }
  closeDevice();
  pool_->give(block_);
  block_ = nullptr;
}

// ---------------------------------------------------------------- registry

namespace {
// Never destroyed: captures may still be stopping while the process exits.
auto *registry = new CaptureRegistry<Capture>();
}  // namespace

std::shared_ptr<Capture> subscribeCapture(const CaptureConfig &cfg, const std::shared_ptr<CaptureSink> &sink,
                                          uint64_t *overrunBase) {
  return registry->subscribe(cfg, [&](Capture &c) { *overrunBase = c.add(sink); });
}

void releaseCapture(const std::shared_ptr<Capture> &capture, const std::shared_ptr<CaptureSink> &sink) {
  registry->release(capture, sink);
}

size_t activeCaptures() { return registry->active(); }

}  // namespace devplane
