#include "experiments/rocks_experiment_state.h"

#include "experiments/experiment_report.h"

namespace affinity {
namespace {

std::string DefinitionKey(const std::string& id) { return "d/" + id; }
std::string StateKey(const std::string& id) { return "s/" + id; }

}  // namespace

absl::StatusOr<std::vector<StoredExperiment>> RocksExperimentState::LoadAll() const {
  std::vector<StoredExperiment> out;
  absl::Status bad;
  auto s = store_->ScanExperimentRecords("d/", [&](std::string_view, std::string_view value) {
    auto e = ParseStoredExperiment(value);
    if (e.ok()) out.push_back({*std::move(e), {}, {}});
    else if (bad.ok()) bad = e.status();
  });
  if (!s.ok()) return s;
  if (!bad.ok()) return absl::DataLossError("a stored experiment does not read: " + std::string(bad.message()));
  for (StoredExperiment& x : out) {
    const std::string& id = x.definition.id;
    auto st = store_->ScanExperimentRecords(CounterPrefix(id), [&](std::string_view key, std::string_view value) {
      x.counters.emplace_back(std::string(key), DecodeCounters(value));
    });
    if (!st.ok()) return st;
    st = store_->ScanExperimentRecords(StateKey(id), [&](std::string_view key, std::string_view value) {
      if (key != StateKey(id)) return;
      ReadRunningMinimums(value, &x.running_min);
    });
    if (!st.ok()) return st;
  }
  return out;
}

absl::Status RocksExperimentState::SaveDefinition(const Experiment& e) {
  return store_->PutExperimentRecord(DefinitionKey(e.id), ExperimentJson(e));
}

absl::Status RocksExperimentState::AddCounters(const std::vector<CounterDelta>& deltas) {
  return store_->AddCounters(deltas);
}

absl::Status RocksExperimentState::SetCounters(const std::vector<CounterDelta>& values) {
  return store_->PutCounters(values);
}

absl::Status RocksExperimentState::SaveRunningMinimums(const std::string& id,
                                                       const std::map<std::string, double>& running_min) {
  return store_->PutExperimentRecord(StateKey(id), RunningMinimumsJson(running_min));
}

}  // namespace affinity
