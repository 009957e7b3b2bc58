// Test helpers around the small world: its batch snapshot built in memory, and a
// clock under which every deadline has already expired.
#pragma once

#include <memory>

#include "base/clock.h"
#include "batch/pipeline.h"
#include "testing/world.h"
#include "batch/batch_options.h"

namespace affinity::testing {

// World::BuildSmall() must have run.
inline std::shared_ptr<Snapshot> SmallSnapshot(World& world) {
  BatchOptions o;
  o.als_factors = 8;
  o.hnsw_m = 8;
  auto snap = BuildSnapshot(*world.store, world.registry, o, world.clock.NowMillis(), nullptr);
  return snap.ok() ? std::move(*snap) : nullptr;
}

// A clock whose monotonic time leaps forward on every read, so that any
// deadline expires at the first check.
class LeapingClock final : public Clock {
 public:
  int64_t NowMillis() const override { return 1'767'225'600'000; }
  int64_t MonotonicMicros() const override { return t_ += 1'000'000; }

 private:
  mutable int64_t t_ = 0;
};

}  // namespace affinity::testing
