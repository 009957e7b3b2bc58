// Runs a refresh function every `poll_ms` on its own thread until stopped: the
// one mechanism behind the snapshot swap and the model watcher (and, next,
// experiments and feature groups). It remembers the last refresh's error,
// cleared by the next refresh that succeeds (whether or not it changed
// anything), and counts the refreshes that changed something.
// Thread safety: all methods are safe for concurrent use; refreshes never
// overlap (RunOnce from a caller waits for a running one).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace affinity {

class Poller {
 public:
  // Returns true when it changed something (a swap), false when nothing was new.
  using Refresh = std::function<absl::StatusOr<bool>()>;
  Poller(int poll_ms, Refresh refresh) : poll_ms_(poll_ms), refresh_(std::move(refresh)) {}
  ~Poller() { Stop(); }
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

  // Refreshes now, on the caller's thread.
  absl::StatusOr<bool> RunOnce() {
    std::lock_guard<std::mutex> run(run_mu_);
    absl::StatusOr<bool> r = refresh_();
    std::lock_guard<std::mutex> lock(mu_);
    if (!r.ok()) {
      last_error_ = std::string(r.status().message());
    } else {
      last_error_.clear();
      if (*r) ++changes_;
    }
    return r;
  }
  // Starts the background thread (once).
  void Start() {
    std::lock_guard<std::mutex> lock(mu_);
    if (thread_.joinable()) return;
    stop_ = false;
    thread_ = std::thread([this] { Loop(); });
  }
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  std::string last_error() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_error_;
  }
  uint64_t changes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return changes_;
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      cv_.wait_for(lock, std::chrono::milliseconds(poll_ms_), [this] { return stop_; });
      if (stop_) break;
      lock.unlock();
      (void)RunOnce();
      lock.lock();
    }
  }

  const int poll_ms_;
  const Refresh refresh_;
  std::mutex run_mu_;            // serialises refreshes
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;            // guarded by mu_
  std::string last_error_;       // guarded by mu_
  uint64_t changes_ = 0;         // guarded by mu_
  std::thread thread_;
};

}  // namespace affinity
