#include "access/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace affinity {

double RateLimiter::BurstFor(double rate_per_s) { return std::max(1.0, std::ceil(rate_per_s)); }

RateLimiter::RateLimiter(const std::vector<ApiKey>& keys)
    : keys_(keys), buckets_(std::make_unique<Bucket[]>(keys.size())) {
  for (size_t i = 0; i < keys.size(); ++i) {
    const double rate = keys[i].rate_per_s;
    if (!(rate > 0)) continue;
    Bucket& b = buckets_[i];
    b.interval_ns = std::max<int64_t>(1, int64_t(std::llround(1e9 / rate)));
    b.tolerance_ns = int64_t(BurstFor(rate)) * b.interval_ns;
  }
}

RateDecision RateLimiter::Take(const ApiKey& key, int64_t now_ns) {
  if (keys_.empty() || &key < keys_.data() || &key >= keys_.data() + keys_.size()) return {};
  Bucket& b = buckets_[size_t(&key - keys_.data())];
  if (b.interval_ns == 0) return {};
  int64_t full_at = b.full_at.load(std::memory_order_relaxed);
  for (;;) {
    // The bucket after this request: one interval further from full.
    const int64_t next = std::max(full_at, now_ns) + b.interval_ns;
    if (next - now_ns > b.tolerance_ns) {
      // Refused: a token is back when `next` is within the tolerance of the clock.
      b.limited.fetch_add(1, std::memory_order_relaxed);
      const int64_t wait_ns = next - b.tolerance_ns - now_ns;
      return {false, std::max<int64_t>(1, (wait_ns + 999'999'999) / 1'000'000'000)};
    }
    if (b.full_at.compare_exchange_weak(full_at, next, std::memory_order_relaxed)) break;
  }
  b.allowed.fetch_add(1, std::memory_order_relaxed);
  return {};
}

std::vector<KeyRateStats> RateLimiter::Stats() const {
  std::vector<KeyRateStats> out;
  for (size_t i = 0; i < keys_.size(); ++i) {
    const Bucket& b = buckets_[i];
    const double rate = b.interval_ns ? keys_[i].rate_per_s : 0;
    out.push_back({keys_[i].name, rate, rate > 0 ? BurstFor(rate) : 0, b.allowed.load(std::memory_order_relaxed),
                   b.limited.load(std::memory_order_relaxed)});
  }
  return out;
}

}  // namespace affinity
