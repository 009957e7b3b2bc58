// Each API key's rate (shared/CONTRACT.md, Access: over a key's rate, 429 with
// Retry-After). A token bucket per key, kept as one atomic: the time at which
// the bucket would be full again (the generic cell rate algorithm, GCRA, which
// is a token bucket stated in time). A request adds one interval (1 / rate) to
// it; it is refused when that would put the time more than a burst of
// intervals past now. Taking a token is a compare-and-swap on the key's own
// cache line: there is no lock, and keys never contend with each other.
//
// The burst is one second of the key's rate (at least 1 request): a client may
// send its whole second's worth at once (a page that issues its queries
// together) but never more than rate_per_s + rate_per_s * t over any t seconds.
//
// Thread safety: Take and Stats are safe for concurrent use.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "access/access.h"

namespace affinity {

// What one request's token taking decided.
struct RateDecision {
  bool allowed = true;
  int64_t retry_after_s = 0;  // when refused: whole seconds until one token is back (>= 1)
};

// A key's limit and what it has counted since start (for /metrics).
struct KeyRateStats {
  std::string name;      // the key's name (never the key)
  double rate_per_s = 0;  // 0: unlimited
  double burst = 0;
  uint64_t allowed = 0;  // requests that took a token (0 for unlimited keys: nothing is counted for them)
  uint64_t limited = 0;  // requests refused with 429
};

class RateLimiter {
 public:
  // A bucket per key of `keys` (which must outlive the limiter: keys are
  // found by their place in it). Keys with rate_per_s 0 are unlimited.
  explicit RateLimiter(const std::vector<ApiKey>& keys);

  // One request by `key` at `now_ns` (a monotonic clock's nanoseconds, e.g.
  // steady_clock). A key outside the vector, or unlimited, is always allowed.
  RateDecision Take(const ApiKey& key, int64_t now_ns);

  std::vector<KeyRateStats> Stats() const;
  // The burst a key of this rate gets: one second of it, at least 1 request.
  static double BurstFor(double rate_per_s);

 private:
  struct alignas(64) Bucket {
    std::atomic<int64_t> full_at{INT64_MIN};  // when the bucket is full again (ns); long ago: full now
    std::atomic<uint64_t> allowed{0}, limited{0};
    int64_t interval_ns = 0;  // 1 / rate; 0: unlimited
    int64_t tolerance_ns = 0;  // burst * interval
  };
  const std::vector<ApiKey>& keys_;
  std::unique_ptr<Bucket[]> buckets_;
};

}  // namespace affinity
