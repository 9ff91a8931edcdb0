// A ring written by a camera's capture thread. RingWriter creates, locks and
// closes the segment; this maps it once more so that several slots can be
// "being written" at once: with V4L2_MEMORY_USERPTR the driver fills ring
// slots directly, and every slot queued with the driver carries the odd
// sequence word of the frame it will hold (docs/shm-format.md, write
// protocol), so no reader takes it for a finished frame.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "shm_writer.h"

namespace devplane {
namespace v4l2 {

class CaptureRing {
 public:
  CaptureRing(const std::string &name, const RingWriterOptions &opts);
  ~CaptureRing();
  CaptureRing(const CaptureRing &) = delete;
  CaptureRing &operator=(const CaptureRing &) = delete;

  const std::string &name() const { return writer_->name(); }
  uint32_t slots() const { return slots_; }
  uint64_t slotSize() const { return slotSize_; }
  uint64_t committed() const { return committed_; }
  // Slots handed out by claim() and not yet committed.
  uint64_t outstanding() const { return nextClaim_ - committed_ - 1; }

  // One copy: the next frame, written and committed.
  void write(const void *data, uint64_t length, const std::string &meta, uint64_t realtimeNs, uint64_t monotonicNs);

  // Zero copy: marks the next frame's slot as being written and returns its
  // payload and sequence number. Frames are committed in claim order.
  uint8_t *claim(uint64_t *seq);
  // True when `p` lies in slot `seq`'s payload (a claimed slot).
  bool owns(const uint8_t *p, uint64_t seq) const;
  void commit(uint64_t seq, uint64_t length, const std::string &meta, uint64_t realtimeNs, uint64_t monotonicNs);
  // Forgets every claim (the driver gave the slots back unfilled). The next
  // claim starts again right after the last committed frame.
  void abandon();

  void setContentType(const std::string &contentType);
  void close(bool unlinkSegment);

 private:
  uint8_t *slotAt(uint64_t seq) const;
  void publish(uint64_t seq, uint64_t length, const std::string &meta, uint64_t realtimeNs, uint64_t monotonicNs);

  std::unique_ptr<RingWriter> writer_;
  int fd_ = -1;
  uint8_t *base_ = nullptr;
  uint64_t size_ = 0;
  uint32_t slots_ = 0;
  uint64_t slotSize_ = 0;
  uint64_t stride_ = 0;
  uint64_t committed_ = 0;
  uint64_t nextClaim_ = 1;
};

}  // namespace v4l2
}  // namespace devplane
