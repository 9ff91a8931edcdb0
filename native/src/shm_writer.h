// The writing side of a devplane ring (docs/shm-format.md). Plain C++ with no
// Node-API, so capture threads can write frames without touching JavaScript.
#pragma once

#include <devplane/shm_ring.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace devplane {

struct RingError : std::runtime_error {
  // code is a short machine-readable tag ("EBUSY", "EINVAL", "ETOOBIG", ...).
  RingError(std::string code, const std::string &message) : std::runtime_error(message), code(std::move(code)) {}
  std::string code;
};

struct RingWriterOptions {
  uint32_t slots = 8;
  uint64_t slotSize = 4u << 20;
  std::string contentType = "application/octet-stream";
  uint32_t mode = 0600;
  uint64_t maxBytes = 1ull << 30;  // the whole segment, header included
};

struct RingReaderStatus {
  uint32_t pid;
  uint64_t lastSeq;
  uint64_t behind;
  uint64_t missed;
  uint64_t idleNs;
};

class RingWriter {
 public:
  RingWriter(const std::string &name, const RingWriterOptions &opts);
  ~RingWriter();
  RingWriter(const RingWriter &) = delete;
  RingWriter &operator=(const RingWriter &) = delete;

  // Zero-copy path for producers that fill the slot themselves: begin() marks
  // the next slot as being written and returns its payload; commit() publishes it.
  uint8_t *begin();
  uint64_t commit(uint64_t length, const char *meta, uint32_t metaLen, uint64_t realtimeNs, uint64_t monotonicNs);

  // Checks sizes first, so a frame that does not fit leaves the ring untouched.
  uint64_t write(const void *data, uint64_t length, const char *meta, uint32_t metaLen, uint64_t realtimeNs,
                 uint64_t monotonicNs);

  void setContentType(const std::string &contentType);
  // Lists attached readers and frees the entries of readers that died.
  std::vector<RingReaderStatus> readers();
  void close(bool unlinkSegment);

  bool isOpen() const { return base_ != nullptr; }
  const std::string &name() const { return name_; }
  uint64_t seq() const { return seq_; }
  uint32_t generation() const { return generation_; }
  uint32_t slots() const { return slotCount_; }
  uint64_t slotSize() const { return slotSize_; }
  bool tookOver() const { return tookOver_; }

 private:
  void createFresh(const RingWriterOptions &opts, uint32_t generation);
  bool takeOver(const RingWriterOptions &opts, uint32_t *oldGeneration);
  void map(int fd, uint64_t size);
  // Unmaps and closes (dropping the lock) without touching the segment.
  void release();
  void wake();

  std::string name_;
  std::string path_;
  int fd_ = -1;
  void *base_ = nullptr;
  uint64_t size_ = 0;
  dp_ring_header *hdr_ = nullptr;
  uint32_t slotCount_ = 0;
  uint64_t slotSize_ = 0;
  uint64_t slotStride_ = 0;
  uint64_t seq_ = 0;
  uint32_t generation_ = 0;
  bool inFrame_ = false;
  bool tookOver_ = false;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

void validateRingName(const std::string &name);

}  // namespace devplane
