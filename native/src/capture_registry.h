// Open captures by their settings, so that every node asking for the same
// device with the same settings shares one capture ("one capture, many
// consumers"). A capture leaves the registry when its last sink does.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace devplane {

template <typename Capture>
class CaptureRegistry {
 public:
  // The open capture for cfg, or a new one; `join(capture)` adds the caller's
  // sink while the registry is locked, so no release can stop it in between.
  template <typename Config, typename Join>
  std::shared_ptr<Capture> subscribe(const Config &cfg, Join join) {
    std::lock_guard<std::mutex> lk(mu_);
    std::string key = cfg.key();
    std::shared_ptr<Capture> c;
    auto it = captures_.find(key);
    if (it != captures_.end()) c = it->second.lock();
    if (!c) {
      c = std::make_shared<Capture>(cfg);
      captures_[key] = c;
    }
    join(*c);
    return c;
  }

  template <typename Sink>
  void release(const std::shared_ptr<Capture> &capture, const Sink &sink) {
    std::lock_guard<std::mutex> lk(mu_);
    if (!capture->remove(sink)) return;
    capture->stop();
    auto it = captures_.find(capture->config().key());
    if (it != captures_.end() && (it->second.expired() || it->second.lock() == capture)) captures_.erase(it);
  }

  size_t active() {
    std::lock_guard<std::mutex> lk(mu_);
    size_t n = 0;
    for (auto &kv : captures_) n += !kv.second.expired();
    return n;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::weak_ptr<Capture>> captures_;
};

}  // namespace devplane
