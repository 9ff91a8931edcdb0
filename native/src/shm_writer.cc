#include "shm_writer.h"

#include <sys/file.h>

#include <cerrno>
#include <climits>
#include <cstring>

namespace devplane {

namespace {

std::string sysError(const std::string &what, int err) { return what + ": " + std::strerror(err); }

std::string errnoCode(int err) {
  switch (err) {
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOSPC: return "ENOSPC";
    case ENOMEM: return "ENOMEM";
    case ELOOP: return "ELOOP";
    case EEXIST: return "EEXIST";
    default: return "ESYSTEM";
  }
}

void checkContentType(const std::string &ct) {
  if (ct.size() >= DP_RING_CONTENT_TYPE_CAPACITY)
    throw RingError("EINVAL", "content type is " + std::to_string(ct.size()) + " bytes, at most " +
                                  std::to_string(DP_RING_CONTENT_TYPE_CAPACITY - 1) + " fit");
  for (unsigned char c : ct)
    if (c < 0x20 || c == 0x7f) throw RingError("EINVAL", "content type contains a control character");
}

// Reads writer_pid straight from the file: the segment may be too short or
// foreign to map, and this is only for the error message.
uint32_t peekWriterPid(int fd) {
  uint32_t pid = 0;
  if (pread(fd, &pid, sizeof(pid), offsetof(dp_ring_header, writer_pid)) != sizeof(pid)) return 0;
  return pid;
}

}  // namespace

void validateRingName(const std::string &name) {
  if (name.size() != std::strlen(name.c_str()) || !dp_ring_name_valid(name.c_str()))
    throw RingError("EINVAL", "invalid ring name \"" + name.substr(0, 64) +
                                  "\": use 1 to 200 of A-Z a-z 0-9 . _ - (not \".\" or \"..\")");
}

RingWriter::RingWriter(const std::string &name, const RingWriterOptions &opts) : name_(name) {
  validateRingName(name);
  if (opts.slots < 1 || opts.slots > DP_RING_MAX_SLOTS)
    throw RingError("EINVAL", "slots must be 1 to " + std::to_string(DP_RING_MAX_SLOTS) + ", got " +
                                  std::to_string(opts.slots));
  if (opts.slotSize < 1 || opts.slotSize > (1ull << 40))
    throw RingError("EINVAL", "slot size must be at least 1 byte, got " + std::to_string(opts.slotSize));
  checkContentType(opts.contentType);
  if ((opts.mode & ~0777u) || (opts.mode & 0600u) != 0600u || (opts.mode & 0113u))
    throw RingError("EINVAL", "mode must give the owner read and write and nobody else write or execute");
  slotCount_ = opts.slots;
  slotSize_ = opts.slotSize;
  slotStride_ = dp_ring_round_up(DP_RING_SLOT_HEADER_SIZE + opts.slotSize, 4096);
  size_ = DP_RING_HEADER_SIZE + uint64_t(slotCount_) * slotStride_;
  if (size_ > opts.maxBytes)
    throw RingError("ETOOBIG", "ring needs " + std::to_string(size_) + " bytes (" + std::to_string(slotCount_) +
                                   " slots of " + std::to_string(slotSize_) + "), more than the limit of " +
                                   std::to_string(opts.maxBytes));
  path_ = std::string(DP_RING_DIR) + name;

  // Two rounds: losing the creation race to another writer sends us once
  // more through the "it exists" path, which then reports that writer.
  for (int round = 0; round < 2; round++) {
    int fd = ::open(path_.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
      fd_ = fd;
      uint32_t oldGeneration = 0;
      if (takeOver(opts, &oldGeneration)) return;
      createFresh(opts, oldGeneration + 1);
    } else if (errno == ENOENT) {
      createFresh(opts, 1);
    } else if (errno == ELOOP) {
      throw RingError("ELOOP", path_ + " is a symbolic link; refusing to follow it");
    } else {
      int e = errno;
      throw RingError(errnoCode(e), sysError("cannot open " + path_, e));
    }
    if (base_) return;
  }
  throw RingError("EBUSY", "another writer keeps creating ring " + name_);
}

RingWriter::~RingWriter() { close(false); }

void RingWriter::map(int fd, uint64_t size) {
  void *p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    int e = errno;
    throw RingError(errnoCode(e), sysError("cannot map " + path_, e));
  }
  base_ = p;
  size_ = size;
  hdr_ = static_cast<dp_ring_header *>(p);
}

void RingWriter::release() {
  if (base_) munmap(base_, size_);
  base_ = nullptr;
  hdr_ = nullptr;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void RingWriter::createFresh(const RingWriterOptions &opts, uint32_t generation) {
  std::string tmp = path_ + ".creating-" + std::to_string(getpid());
  ::unlink(tmp.c_str());
  fd_ = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, opts.mode);
  if (fd_ < 0) {
    int e = errno;
    throw RingError(errnoCode(e), sysError("cannot create " + tmp, e));
  }
  auto fail = [&](const std::string &code, const std::string &msg) {
    release();
    ::unlink(tmp.c_str());
    throw RingError(code, msg);
  };
  // umask may have narrowed the mode; the user asked for exactly this one.
  if (fchmod(fd_, opts.mode) != 0) fail(errnoCode(errno), sysError("cannot set mode on " + tmp, errno));
  if (flock(fd_, LOCK_EX | LOCK_NB) != 0) fail("EBUSY", sysError("cannot lock " + tmp, errno));
  // fallocate reports a full /dev/shm as ENOSPC here; touching unallocated
  // tmpfs pages would raise SIGBUS instead.
  int rc = posix_fallocate(fd_, 0, off_t(size_));
  if (rc != 0)
    fail(errnoCode(rc), sysError("cannot reserve " + std::to_string(size_) + " bytes in /dev/shm", rc));
  try {
    map(fd_, size_);
  } catch (const RingError &e) {
    fail(e.code, e.what());
  }
  // Touch every page now: the first write into a fresh shared page costs
  // several times a later one, and that cost belongs at creation, not on frames.
  std::memset(base_, 0, size_);
  hdr_->version = DP_RING_VERSION;
  hdr_->header_size = DP_RING_HEADER_SIZE;
  hdr_->slot_count = slotCount_;
  hdr_->slot_header_size = DP_RING_SLOT_HEADER_SIZE;
  hdr_->slot_size = slotSize_;
  hdr_->slot_stride = slotStride_;
  hdr_->total_size = size_;
  hdr_->writer_pid = uint32_t(getpid());
  hdr_->generation = generation;
  hdr_->reader_capacity = DP_RING_READER_CAPACITY;
  hdr_->created_ns = dp_ring_clock_ns(CLOCK_REALTIME);
  std::memcpy(hdr_->content_type, opts.contentType.c_str(), opts.contentType.size() + 1);
  hdr_->content_type_len = uint32_t(opts.contentType.size());
  uint64_t magic;
  std::memcpy(&magic, DP_RING_MAGIC, 8);
  __atomic_store_n(reinterpret_cast<uint64_t *>(hdr_->magic), magic, __ATOMIC_RELEASE);

  if (::link(tmp.c_str(), path_.c_str()) != 0) {
    int e = errno;
    if (e != EEXIST) fail(errnoCode(e), sysError("cannot publish " + path_, e));
    // Another writer created the name first: the caller looks at it again.
    release();
    ::unlink(tmp.c_str());
    return;
  }
  ::unlink(tmp.c_str());
  struct stat st;
  fstat(fd_, &st);
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  generation_ = generation;
  seq_ = 0;
}

bool RingWriter::takeOver(const RingWriterOptions &opts, uint32_t *oldGeneration) {
  auto fail = [&](const std::string &code, const std::string &msg) {
    release();
    throw RingError(code, msg);
  };
  struct stat st;
  if (fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) fail("EINVAL", path_ + " is not a regular file");
  if (st.st_uid != geteuid())
    fail("EACCES", path_ + " belongs to uid " + std::to_string(st.st_uid) + "; only its owner may write it");
  if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    uint32_t pid = peekWriterPid(fd_);
    fail("EBUSY", "ring \"" + name_ + "\" already has a writer" + (pid ? " (pid " + std::to_string(pid) + ")" : "") +
                      "; a ring takes one writer");
  }
  uint64_t have = uint64_t(st.st_size);
  uint64_t want = size_;
  if (have < DP_RING_HEADER_SIZE)
    fail("EEXIST", path_ + " exists and is not a devplane ring; remove it or choose another name");
  map(fd_, have);
  char err[256];
  if (dp_ring_validate_header(base_, have, err, sizeof(err)) != 0)
    fail("EEXIST", path_ + " exists and is not a usable devplane ring (" + err +
                       "); remove it or choose another name");
  *oldGeneration = hdr_->generation;
  bool sameShape = hdr_->slot_count == slotCount_ && hdr_->slot_size == slotSize_ && have == want;
  if (!sameShape) {
    // Unlink before flagging: a reader that reopens on seeing the flag must
    // not find the old file under the name again.
    ::unlink(path_.c_str());
    __atomic_fetch_or(&hdr_->flags, DP_RING_FLAG_REPLACED, __ATOMIC_RELEASE);
    wake();
    release();
    size_ = want;
    return false;
  }
  if (fchmod(fd_, opts.mode) != 0) fail(errnoCode(errno), sysError("cannot set mode on " + path_, errno));
  // Nothing of the dead writer's stays readable: clear slots, then the
  // sequence, then announce the new generation (docs/shm-format.md, Takeover).
  for (uint32_t i = 0; i < slotCount_; i++) {
    dp_ring_slot *s = dp_ring_slot_at(base_, DP_RING_HEADER_SIZE, slotStride_, slotCount_, i);
    __atomic_store_n(&s->state, 0, __ATOMIC_RELEASE);
  }
  __atomic_store_n(&hdr_->write_seq, 0, __ATOMIC_RELEASE);
  std::memset(hdr_->content_type, 0, DP_RING_CONTENT_TYPE_CAPACITY);
  std::memcpy(hdr_->content_type, opts.contentType.c_str(), opts.contentType.size());
  hdr_->content_type_len = uint32_t(opts.contentType.size());
  hdr_->created_ns = dp_ring_clock_ns(CLOCK_REALTIME);
  __atomic_store_n(&hdr_->writer_pid, uint32_t(getpid()), __ATOMIC_RELEASE);
  __atomic_store_n(&hdr_->flags, 0u, __ATOMIC_RELEASE);
  generation_ = *oldGeneration + 1;
  __atomic_store_n(&hdr_->generation, generation_, __ATOMIC_RELEASE);
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  seq_ = 0;
  tookOver_ = true;
  wake();
  return true;
}

void RingWriter::wake() {
  __atomic_fetch_add(&hdr_->futex, 1, __ATOMIC_RELEASE);
  // A reader sleeping on the futex announced itself in waiters first; with
  // nobody asleep the syscall would be pure cost on the hot path.
  if (__atomic_load_n(&hdr_->waiters, __ATOMIC_ACQUIRE) != 0)
    dp_ring_futex(&hdr_->futex, FUTEX_WAKE, INT_MAX, nullptr);
}

uint8_t *RingWriter::begin() {
  if (!base_) throw RingError("ECLOSED", "ring " + name_ + " is closed");
  uint64_t seq = seq_ + 1;
  dp_ring_slot *s = dp_ring_slot_at(base_, DP_RING_HEADER_SIZE, slotStride_, slotCount_, seq);
  if (!inFrame_) {
    __atomic_store_n(&s->state, 2 * seq + 1, __ATOMIC_RELAXED);
    // Readers must see the slot as "being written" before any byte changes.
    __atomic_thread_fence(__ATOMIC_RELEASE);
    inFrame_ = true;
  }
  return reinterpret_cast<uint8_t *>(s) + DP_RING_SLOT_HEADER_SIZE;
}

uint64_t RingWriter::commit(uint64_t length, const char *meta, uint32_t metaLen, uint64_t realtimeNs,
                            uint64_t monotonicNs) {
  if (!base_) throw RingError("ECLOSED", "ring " + name_ + " is closed");
  if (!inFrame_) throw RingError("EINVAL", "commit without begin");
  uint64_t seq = seq_ + 1;
  dp_ring_slot *s = dp_ring_slot_at(base_, DP_RING_HEADER_SIZE, slotStride_, slotCount_, seq);
  if (length > slotSize_ || metaLen > DP_RING_META_CAPACITY)
    throw RingError("ETOOBIG", "frame does not fit its slot");
  __atomic_store_n(&s->length, length, __ATOMIC_RELAXED);
  __atomic_store_n(&s->realtime_ns, realtimeNs, __ATOMIC_RELAXED);
  __atomic_store_n(&s->monotonic_ns, monotonicNs, __ATOMIC_RELAXED);
  __atomic_store_n(&s->meta_len, metaLen, __ATOMIC_RELAXED);
  __atomic_store_n(&s->seq, seq, __ATOMIC_RELAXED);
  if (metaLen) std::memcpy(s->meta, meta, metaLen);
  __atomic_store_n(&s->state, 2 * seq, __ATOMIC_RELEASE);
  __atomic_store_n(&hdr_->write_seq, seq, __ATOMIC_RELEASE);
  seq_ = seq;
  inFrame_ = false;
  wake();
  return seq;
}

uint64_t RingWriter::write(const void *data, uint64_t length, const char *meta, uint32_t metaLen,
                           uint64_t realtimeNs, uint64_t monotonicNs) {
  if (!base_) throw RingError("ECLOSED", "ring " + name_ + " is closed");
  if (length > slotSize_)
    throw RingError("ETOOBIG", "payload is " + std::to_string(length) + " bytes but a slot holds " +
                                   std::to_string(slotSize_) + " bytes");
  if (metaLen > DP_RING_META_CAPACITY)
    throw RingError("EMETA", "metadata is " + std::to_string(metaLen) + " bytes, at most " +
                                 std::to_string(DP_RING_META_CAPACITY) + " fit");
  uint8_t *payload = begin();
  if (length) std::memcpy(payload, data, length);
  return commit(length, meta, metaLen, realtimeNs, monotonicNs);
}

void RingWriter::setContentType(const std::string &contentType) {
  if (!base_) throw RingError("ECLOSED", "ring " + name_ + " is closed");
  checkContentType(contentType);
  // Readers copy the string before they use it; a change mid-copy at worst
  // gives them a mixed string for one read, never an unterminated one.
  std::memset(hdr_->content_type + contentType.size(), 0, DP_RING_CONTENT_TYPE_CAPACITY - contentType.size());
  std::memcpy(hdr_->content_type, contentType.data(), contentType.size());
  __atomic_store_n(&hdr_->content_type_len, uint32_t(contentType.size()), __ATOMIC_RELEASE);
}

std::vector<RingReaderStatus> RingWriter::readers() {
  std::vector<RingReaderStatus> out;
  if (!base_) return out;
  uint64_t now = dp_ring_clock_ns(CLOCK_MONOTONIC);
  for (uint32_t i = 0; i < DP_RING_READER_CAPACITY; i++) {
    dp_ring_reader_entry *e = &hdr_->readers[i];
    uint32_t pid = __atomic_load_n(&e->pid, __ATOMIC_ACQUIRE);
    if (pid == 0) continue;
    if (!dp_ring_pid_alive(pid)) {
      __atomic_compare_exchange_n(&e->pid, &pid, 0u, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
      continue;
    }
    RingReaderStatus r;
    r.pid = pid;
    r.lastSeq = __atomic_load_n(&e->last_seq, __ATOMIC_RELAXED);
    uint32_t gen = __atomic_load_n(&e->generation, __ATOMIC_RELAXED);
    r.behind = gen == generation_ && seq_ > r.lastSeq ? seq_ - r.lastSeq : (gen == generation_ ? 0 : seq_);
    r.missed = __atomic_load_n(&e->missed, __ATOMIC_RELAXED);
    uint64_t hb = __atomic_load_n(&e->heartbeat_ns, __ATOMIC_ACQUIRE);
    r.idleNs = now > hb ? now - hb : 0;
    out.push_back(r);
  }
  return out;
}

void RingWriter::close(bool unlinkSegment) {
  if (!base_) return;
  __atomic_fetch_or(&hdr_->flags, DP_RING_FLAG_WRITER_CLOSED, __ATOMIC_RELEASE);
  __atomic_store_n(&hdr_->writer_pid, 0u, __ATOMIC_RELEASE);
  wake();
  if (unlinkSegment) {
    // Only our own file: a new writer may already own the name.
    struct stat st;
    if (::stat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) ::unlink(path_.c_str());
  }
  // The lock goes with the fd, after the unlink: a new writer never sees our file unlocked under the name.
  release();
}

}  // namespace devplane
