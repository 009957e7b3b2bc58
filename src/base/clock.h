// Time sources. All time in the product is unix milliseconds (int64).
// Thread safety: every Clock implementation is safe for concurrent use.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace affinity {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time, unix milliseconds.
  virtual int64_t NowMillis() const = 0;
  // Monotonic time in microseconds, for deadlines and latency.
  virtual int64_t MonotonicMicros() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowMillis() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  int64_t MonotonicMicros() const override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  static const SystemClock* Default() {
    static const SystemClock clock;
    return &clock;
  }
};

// A clock set by hand: tests move it; batch pins "now" to its run time.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t now_ms = 1'700'000'000'000) : now_ms_(now_ms) {}
  int64_t NowMillis() const override { return now_ms_.load(); }
  int64_t MonotonicMicros() const override { return now_ms_.load() * 1000; }
  void Advance(int64_t ms) { now_ms_ += ms; }
  void Set(int64_t ms) { now_ms_ = ms; }

 private:
  std::atomic<int64_t> now_ms_;
};

// A per-request deadline on a monotonic clock.
class Deadline {
 public:
  Deadline(const Clock* clock, int64_t budget_micros)
      : clock_(clock), end_(clock->MonotonicMicros() + budget_micros) {}
  bool Expired() const { return clock_->MonotonicMicros() >= end_; }
  int64_t RemainingMicros() const { return end_ - clock_->MonotonicMicros(); }

 private:
  const Clock* clock_;
  int64_t end_;
};

}  // namespace affinity
