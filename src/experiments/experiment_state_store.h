// Where experiments keep their state: each experiment's definition, its
// per-arm counters and its running minimums of always-valid p-values. A server
// reads it all once at start (LoadAll) and then only writes; what it serves and
// reports comes from memory. One implementation per deployment: the store's
// `experiments` column family on a single machine (RocksExperimentState); a
// cluster's shared store plugs in here.
//
// Counters are vectors of int64 keyed by the caller: every key of an
// experiment's counters starts with CounterPrefix(id), which is how LoadAll
// finds them. AddCounters adds element by element (a missing counter, or a
// shorter one, counts as zeros), so a writer never reads; SetCounters replaces.
//
// Durability: SaveDefinition is durable when it returns (an admin change, a
// guardrail stop and a canary's decision survive a machine crash); counters
// and running minimums survive a crash of the process (a machine crash may
// lose the last moments of them).
// Thread safety: every method is safe for concurrent use.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/experiment.h"

namespace affinity {

// A counter's key and the values to add to it (or to set it to).
using CounterDelta = std::pair<std::string, std::vector<int64_t>>;

// The prefix of every counter key of experiment `id`.
inline std::string CounterPrefix(const std::string& id) { return "k/" + id + "/"; }

// One experiment as stored.
struct StoredExperiment {
  Experiment definition;
  std::vector<CounterDelta> counters;       // every counter under CounterPrefix(id), keys whole, in key order
  std::map<std::string, double> running_min;  // as last saved; empty when never saved
};

class ExperimentStateStore {
 public:
  virtual ~ExperimentStateStore() = default;

  // Every stored experiment (in no particular order) with its counters and
  // running minimums. DataLoss when a stored definition does not read.
  virtual absl::StatusOr<std::vector<StoredExperiment>> LoadAll() const = 0;
  // Writes (or replaces) the definition of e.id; durable when it returns.
  virtual absl::Status SaveDefinition(const Experiment& e) = 0;
  // Adds each delta to its counter, all in one write.
  virtual absl::Status AddCounters(const std::vector<CounterDelta>& deltas) = 0;
  // Sets each counter to its values, all in one write.
  virtual absl::Status SetCounters(const std::vector<CounterDelta>& values) = 0;
  // Replaces experiment `id`'s running minimums.
  virtual absl::Status SaveRunningMinimums(const std::string& id, const std::map<std::string, double>& running_min) = 0;
};

}  // namespace affinity
