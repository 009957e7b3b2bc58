// The single-machine ExperimentStateStore: the store's `experiments` column
// family (docs/storage.md). Definitions are `d/<id>` (the stored JSON, written
// with fsync), running minimums `s/<id>` (JSON, WAL), counters their own keys
// (`k/<id>/…`, a merge of int64 vectors, WAL).
// Thread safety: as Store, safe for concurrent use.
#pragma once

#include "experiments/experiment_state_store.h"
#include "store/store.h"

namespace affinity {

class RocksExperimentState : public ExperimentStateStore {
 public:
  explicit RocksExperimentState(Store* store) : store_(store) {}

  absl::StatusOr<std::vector<StoredExperiment>> LoadAll() const override;
  absl::Status SaveDefinition(const Experiment& e) override;
  absl::Status AddCounters(const std::vector<CounterDelta>& deltas) override;
  absl::Status SetCounters(const std::vector<CounterDelta>& values) override;
  absl::Status SaveRunningMinimums(const std::string& id, const std::map<std::string, double>& running_min) override;

 private:
  Store* store_;
};

}  // namespace affinity
