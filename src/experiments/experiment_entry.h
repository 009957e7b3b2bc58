// One experiment as a server holds it, shared by the experiments' rooms: the
// catalogue (experiment_catalogue.h) builds and publishes entries, the arm
// ledger (arm_ledger.h) books into their counters, the guardrail evaluator
// (guardrail_evaluator.h) reads their figures. Internal to experiments/.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "experiments/experiment.h"
#include "experiments/experiment_metrics.h"
#include "serving/query_engine.h"

namespace affinity {

// What the counters of one experiment need besides the definition: they
// outlive definition changes (an arm stopped, the experiment stopped).
struct EntryState {
  EntryState(const std::string& id, size_t arms) : metrics(id, arms) {
    static std::atomic<uint32_t> next{0};
    ordinal = next.fetch_add(1);
  }
  uint32_t ordinal;                   // identifies the experiment within this process
  std::mutex mu;
  ExperimentMetrics metrics;          // guarded by mu
  std::map<std::string, double> avp;  // running minimum of each always-valid p-value; guarded by mu
};

// A definition with its arms' serving and its counters. Immutable once
// published; a change publishes a new entry over the same state.
struct ExperimentEntry {
  Experiment def;
  std::vector<std::shared_ptr<const ArmServing>> serving;  // per arm; null: served as the default
  std::vector<std::string> model_error;                    // per arm: why its model did not load
  std::shared_ptr<EntryState> state;
};

}  // namespace affinity
