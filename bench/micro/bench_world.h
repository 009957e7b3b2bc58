// A generated world, imported and batched once per benchmark process.
// Size from AFFINITY_BENCH_USERS / _CREATORS / _ITEMS / _EVENTS (default: a
// 20k-user world with 1M events).
#pragma once

#include <memory>
#include <vector>

#include "features/snapshot.h"
#include "serving/query_engine.h"
#include "testing/world.h"

namespace affinity::bench {

struct BenchWorld {
  testing::World world;
  std::shared_ptr<Snapshot> snapshot;
  std::unique_ptr<QueryEngine> engine;
  std::vector<std::string> viewers;  // active viewers to query for
};

BenchWorld& GetBenchWorld();

}  // namespace affinity::bench
