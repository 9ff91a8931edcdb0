// Frame-sized memory blocks shared by a capture thread and JavaScript.
//
// A fresh multi-megabyte block costs a page fault per 4 KiB to fill and an
// munmap to free, more than copying a frame into it. Blocks handed to
// JavaScript as Buffers come back here when the Buffers are collected, so the
// next frames reuse memory that is already mapped. Small blocks go to malloc.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <vector>

namespace devplane {
namespace v4l2 {

class BlockPool {
 public:
  static constexpr size_t kMinBytes = 256 * 1024;
  static constexpr size_t kMaxPooledBytes = 64u << 20;

  ~BlockPool() { close(); }

  // A block of at least `bytes`. A large one is page-aligned (a driver may
  // take it as V4L2_MEMORY_USERPTR) and has a page before it recording its
  // capacity. Give it back with the same `bytes`.
  uint8_t *take(size_t bytes) {
    if (bytes < kMinBytes) return static_cast<uint8_t *>(std::malloc(bytes ? bytes : 1));
    size_t cap = roundUp(bytes);
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (cap > cap_) {
        // Frames grew (a new format): the smaller blocks are of no more use.
        for (uint8_t *b : free_) std::free(b - kPage);
        free_.clear();
        cap_ = cap;
      }
      if (!free_.empty()) {
        uint8_t *b = free_.back();
        free_.pop_back();
        hits_++;
        return b;
      }
      misses_++;
      cap = cap_;
    }
    auto *base = static_cast<uint8_t *>(std::aligned_alloc(kPage, cap + kPage));
    if (!base) return nullptr;
    *reinterpret_cast<size_t *>(base) = cap;
    return base + kPage;
  }

  // What a block taken for `bytes` holds.
  static size_t capacityOf(const uint8_t *p, size_t bytes) {
    return bytes < kMinBytes ? bytes : *reinterpret_cast<const size_t *>(p - kPage);
  }

  // Any thread.
  void give(uint8_t *p, size_t bytes) {
    if (!p) return;
    if (bytes < kMinBytes) {
      std::free(p);
      return;
    }
    size_t cap = capacityOf(p, bytes);
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (!closed_ && cap == cap_ && (free_.size() + 1) * cap <= std::max(kMaxPooledBytes, 2 * cap)) {
        free_.push_back(p);
        return;
      }
    }
    std::free(p - kPage);
  }

  // Large blocks served from the pool, and allocated afresh.
  void counts(uint64_t *hits, uint64_t *misses) {
    std::lock_guard<std::mutex> lk(mu_);
    *hits = hits_;
    *misses = misses_;
  }

  // Frees what is pooled; blocks given back later are freed at once.
  void close() {
    std::lock_guard<std::mutex> lk(mu_);
    closed_ = true;
    for (uint8_t *b : free_) std::free(b - kPage);
    free_.clear();
  }

 private:
  static constexpr size_t kPage = 4096;
  static size_t roundUp(size_t bytes) { return (bytes + kPage - 1) & ~(kPage - 1); }

  std::mutex mu_;
  std::vector<uint8_t *> free_;
  size_t cap_ = 0;
  bool closed_ = false;
  uint64_t hits_ = 0, misses_ = 0;
};

}  // namespace v4l2
}  // namespace devplane
