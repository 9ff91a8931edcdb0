#include "v4l2_ring.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

namespace devplane {
namespace v4l2 {

CaptureRing::CaptureRing(const std::string &name, const RingWriterOptions &opts)
    : writer_(std::make_unique<RingWriter>(name, opts)) {
  std::string path = std::string(DP_RING_DIR) + name;
  auto fail = [&](const std::string &what) {
    int e = errno;
    if (base_) munmap(base_, size_);
    base_ = nullptr;
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    writer_->close(true);
    throw RingError("ESYSTEM", what + " " + path + ": " + std::strerror(e));
  };
  fd_ = ::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (fd_ < 0) fail("cannot open");
  struct stat st;
  if (fstat(fd_, &st) != 0) fail("cannot stat");
  size_ = uint64_t(st.st_size);
  void *p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (p == MAP_FAILED) fail("cannot map");
  base_ = static_cast<uint8_t *>(p);
  auto *hdr = reinterpret_cast<dp_ring_header *>(base_);
  // We hold the writer's lock, so the file under the name is the one it made.
  if (__atomic_load_n(&hdr->writer_pid, __ATOMIC_ACQUIRE) != uint32_t(getpid()) ||
      hdr->generation != writer_->generation()) {
    errno = EPROTO;
    fail("another segment replaced");
  }
  slots_ = hdr->slot_count;
  slotSize_ = hdr->slot_size;
  stride_ = hdr->slot_stride;
  committed_ = __atomic_load_n(&hdr->write_seq, __ATOMIC_ACQUIRE);
  nextClaim_ = committed_ + 1;
}

CaptureRing::~CaptureRing() { close(true); }

uint8_t *CaptureRing::slotAt(uint64_t seq) const {
  return reinterpret_cast<uint8_t *>(dp_ring_slot_at(base_, DP_RING_HEADER_SIZE, stride_, slots_, seq));
}

bool CaptureRing::owns(const uint8_t *p, uint64_t seq) const {
  return base_ && seq && p == slotAt(seq) + DP_RING_SLOT_HEADER_SIZE;
}

uint8_t *CaptureRing::claim(uint64_t *seq) {
  if (!base_) throw RingError("ECLOSED", "ring is closed");
  uint64_t n = nextClaim_++;
  auto *s = reinterpret_cast<dp_ring_slot *>(slotAt(n));
  __atomic_store_n(&s->state, 2 * n + 1, __ATOMIC_RELAXED);
  // Readers must see the slot as "being written" before the driver touches a byte.
  __atomic_thread_fence(__ATOMIC_RELEASE);
  *seq = n;
  return slotAt(n) + DP_RING_SLOT_HEADER_SIZE;
}

void CaptureRing::abandon() { nextClaim_ = committed_ + 1; }

void CaptureRing::publish(uint64_t seq, uint64_t length, const std::string &meta, uint64_t realtimeNs,
                          uint64_t monotonicNs) {
  auto *s = reinterpret_cast<dp_ring_slot *>(slotAt(seq));
  uint32_t metaLen = uint32_t(meta.size() > DP_RING_META_CAPACITY ? 0 : meta.size());
  __atomic_store_n(&s->length, length, __ATOMIC_RELAXED);
  __atomic_store_n(&s->realtime_ns, realtimeNs, __ATOMIC_RELAXED);
  __atomic_store_n(&s->monotonic_ns, monotonicNs, __ATOMIC_RELAXED);
  __atomic_store_n(&s->meta_len, metaLen, __ATOMIC_RELAXED);
  __atomic_store_n(&s->seq, seq, __ATOMIC_RELAXED);
  if (metaLen) std::memcpy(s->meta, meta.data(), metaLen);
  __atomic_store_n(&s->state, 2 * seq, __ATOMIC_RELEASE);
  auto *hdr = reinterpret_cast<dp_ring_header *>(base_);
  __atomic_store_n(&hdr->write_seq, seq, __ATOMIC_RELEASE);
  committed_ = seq;
  __atomic_fetch_add(&hdr->futex, 1, __ATOMIC_RELEASE);
  // With nobody asleep the syscall would be pure cost on the hot path.
  if (__atomic_load_n(&hdr->waiters, __ATOMIC_ACQUIRE) != 0) dp_ring_futex(&hdr->futex, FUTEX_WAKE, INT_MAX, nullptr);
}

void CaptureRing::commit(uint64_t seq, uint64_t length, const std::string &meta, uint64_t realtimeNs,
                         uint64_t monotonicNs) {
  if (!base_) throw RingError("ECLOSED", "ring is closed");
  if (seq != committed_ + 1 || seq >= nextClaim_)
    throw RingError("EINVAL", "frame " + std::to_string(seq) + " committed out of order (last " +
                                  std::to_string(committed_) + ")");
  if (length > slotSize_) throw RingError("ETOOBIG", "frame does not fit its slot");
  publish(seq, length, meta, realtimeNs, monotonicNs);
}

void CaptureRing::write(const void *data, uint64_t length, const std::string &meta, uint64_t realtimeNs,
                        uint64_t monotonicNs) {
  if (!base_) throw RingError("ECLOSED", "ring is closed");
  if (length > slotSize_)
    throw RingError("ETOOBIG", "frame is " + std::to_string(length) + " bytes but a slot holds " +
                                   std::to_string(slotSize_));
  if (outstanding()) abandon();
  uint64_t seq;
  uint8_t *p = claim(&seq);
  if (length) std::memcpy(p, data, length);
  publish(seq, length, meta, realtimeNs, monotonicNs);
}

void CaptureRing::setContentType(const std::string &contentType) {
  if (writer_ && writer_->isOpen()) writer_->setContentType(contentType);
}

void CaptureRing::close(bool unlinkSegment) {
  if (base_) munmap(base_, size_);
  base_ = nullptr;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (writer_) writer_->close(unlinkSegment);
}

}  // namespace v4l2
}  // namespace devplane
