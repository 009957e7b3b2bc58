// The experiment service's per-experiment entry, shared by its two files
// (experiment_service.cc: definitions, assignment, reports and guardrails;
// experiment_outcomes.cc: booking responses and outcomes into counters).
// Internal to experiments/.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "experiments/experiment_metrics.h"
#include "experiments/experiment_service.h"

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

struct ExperimentService::Entry {
  Experiment def;
  std::vector<std::shared_ptr<const ArmServing>> serving;  // per arm; null: served as the default
  std::vector<std::string> model_error;                    // per arm: why its model did not load
  std::shared_ptr<EntryState> state;
};

}  // namespace affinity
