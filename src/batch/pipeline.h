// The offline pipeline: from the event log up to a watermark it computes decayed
// popularity, co-engagement neighbours, ALS embeddings, random-walk adjacency,
// graph statistics and an HNSW index per kind, then publishes a snapshot.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "base/config.h"
#include "features/snapshot.h"
#include "state/registry.h"
#include "store/store.h"
#include "batch/batch_options.h"

namespace affinity {

struct BatchReport {
  std::string version;
  uint64_t events = 0, pairs = 0;
  double seconds = 0;
  double als_loss = 0;
  std::string stage_seconds_json;  // {"scan":x,...} (the manifest's record)
  std::vector<std::pair<std::string, double>> stage_seconds;  // the same, in order
};

using ProgressFn = std::function<void(const std::string& stage)>;

// Computes a snapshot in memory from the store's log (no publishing).
absl::StatusOr<std::shared_ptr<Snapshot>> BuildSnapshot(const Store& store, const EntityRegistry& registry,
                                                        const BatchOptions& options, int64_t now_ms,
                                                        BatchReport* report, const ProgressFn& progress = {});

// Opens data_dir's store (as a secondary, so a running server is not disturbed)
// with `store` (its retentions; its clock is now_ms), builds a snapshot and
// publishes it.
absl::StatusOr<BatchReport> RunBatch(const std::string& data_dir, const BatchOptions& options, StoreOptions store,
                                     int64_t now_ms, const ProgressFn& progress = {});

}  // namespace affinity
