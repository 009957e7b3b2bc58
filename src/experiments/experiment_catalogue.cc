#include "experiments/experiment_catalogue.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "absl/strings/str_format.h"
#include "base/json_writer.h"
#include "base/strings.h"
#include "experiments/experiment_entry.h"

namespace affinity {

ExperimentCatalogue::ExperimentCatalogue(ExperimentStateStore* state, const ServingOptions& serving, const Clock* clock,
                                         ModelLoader load_model, ModelVersions model_versions)
    : state_(state),
      serving_(serving),
      clock_(clock),
      load_model_(std::move(load_model)),
      model_versions_(std::move(model_versions)) {
  set_.store(std::make_shared<const Set>());
}

std::shared_ptr<const ExperimentEntry> ExperimentCatalogue::MakeEntry(Experiment def,
                                                                      std::shared_ptr<EntryState> state) const {
  auto e = std::make_shared<ExperimentEntry>();
  e->serving.resize(def.arms.size());
  e->model_error.resize(def.arms.size());
  for (size_t i = 0; i < def.arms.size(); ++i) {
    const ExperimentArm& arm = def.arms[i];
    if (arm.model_version.empty() && arm.ranker == ArmRanker::kDefault && arm.overrides.empty()) continue;
    auto cfg = ServingWithOverrides(serving_, arm.overrides);
    auto serving = std::make_shared<ArmServing>(cfg.ok() ? *cfg : serving_);
    if (!cfg.ok()) e->model_error[i] = "overrides not applied: " + std::string(cfg.status().message());
    serving->ranker_off = arm.ranker == ArmRanker::kOff;
    if (!arm.model_version.empty() && load_model_) {
      auto m = load_model_(arm.model_version);
      if (m.ok()) {
        serving->model = *m;
      } else {
        e->model_error[i] = "model " + arm.model_version + " did not load (" + std::string(m.status().message()) +
                            "); the arm serves the default model";
      }
    }
    e->serving[i] = std::move(serving);
  }
  e->state = state ? std::move(state) : std::make_shared<EntryState>(def.id, def.arms.size());
  e->def = std::move(def);
  return e;
}

absl::Status ExperimentCatalogue::Load() {
  auto stored = state_->LoadAll();
  if (!stored.ok()) return stored.status();
  auto set = std::make_shared<Set>();
  for (StoredExperiment& x : *stored) {
    Experiment& def = x.definition;
    auto state = std::make_shared<EntryState>(def.id, def.arms.size());
    const size_t prefix = CounterPrefix(def.id).size();
    for (const auto& [key, values] : x.counters) state->metrics.LoadCounter(std::string_view(key).substr(prefix), values);
    state->avp = std::move(x.running_min);
    set->push_back(MakeEntry(std::move(def), state));
  }
  std::sort(set->begin(), set->end(), [](const auto& a, const auto& b) {
    return a->def.created_ms != b->def.created_ms ? a->def.created_ms < b->def.created_ms : a->def.id < b->def.id;
  });
  set_.store(std::move(set));
  return absl::OkStatus();
}

std::shared_ptr<const ExperimentEntry> ExperimentCatalogue::Find(const std::string& id) const {
  const std::shared_ptr<const Set> set = set_.load();  // held while iterating
  for (const auto& e : *set)
    if (e->def.id == id) return e;
  return nullptr;
}

absl::Status ExperimentCatalogue::Validate(const Experiment& e, const Set& set) const {
  std::vector<std::string> versions = model_versions_ ? model_versions_() : std::vector<std::string>();
  for (size_t i = 0; i < e.arms.size(); ++i) {
    const ExperimentArm& arm = e.arms[i];
    const std::string where = "arms[" + std::to_string(i) + "].";
    if (!arm.model_version.empty() && std::find(versions.begin(), versions.end(), arm.model_version) == versions.end())
      return absl::InvalidArgumentError(where + "model_version: unknown model version '" + arm.model_version + "'");
    if (auto c = ServingWithOverrides(serving_, arm.overrides); !c.ok())
      return absl::InvalidArgumentError(where + "overrides: " + std::string(c.status().message()));
  }
  int used = 0;
  for (const auto& other : set)
    if (other->def.running() && !e.layer.empty() && other->def.layer == e.layer) used += other->def.TrafficBasisPoints();
  if (used + e.TrafficBasisPoints() > 10000)
    return absl::InvalidArgumentError(absl::StrFormat(
        "traffic: layer '%s' has %g%% of its viewers free and this experiment asks for %g%%; stop one of its "
        "experiments or lower traffic",
        e.layer, (10000 - used) / 100.0, e.traffic));
  return absl::OkStatus();
}

absl::StatusOr<int> ExperimentCatalogue::FreeSlice(const Experiment& e, const Set& set) const {
  // Experiments in one layer take disjoint slices of one hash of the viewer.
  std::vector<std::pair<int, int>> taken;
  for (const auto& other : set)
    if (other->def.running() && other->def.layer == e.layer)
      taken.emplace_back(other->def.traffic_offset, other->def.traffic_offset + other->def.TrafficBasisPoints());
  std::sort(taken.begin(), taken.end());
  int at = 0;
  for (auto [lo, hi] : taken) {
    if (lo - at >= e.TrafficBasisPoints()) break;
    at = std::max(at, hi);
  }
  if (at + e.TrafficBasisPoints() > 10000)
    return absl::InvalidArgumentError(absl::StrFormat(
        "traffic: layer '%s' has no free contiguous slice of %g%% left (stopped experiments free theirs)", e.layer,
        e.traffic));
  return at;
}

absl::Status ExperimentCatalogue::Publish(std::shared_ptr<const ExperimentEntry> entry) {
  if (auto s = state_->SaveDefinition(entry->def); !s.ok()) return s;
  auto next = std::make_shared<Set>(*set_.load());
  bool replaced = false;
  for (auto& e : *next)
    if (e->def.id == entry->def.id) e = entry, replaced = true;
  if (!replaced) next->push_back(std::move(entry));
  set_.store(std::move(next));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ExperimentCatalogue::Create(std::string_view json) {
  auto parsed = ParseExperiment(json);
  if (!parsed.ok()) return parsed.status();
  return Create(*std::move(parsed));
}

absl::StatusOr<std::string> ExperimentCatalogue::Create(Experiment e) {
  std::lock_guard<std::mutex> lock(admin_mu_);
  const auto set = set_.load();
  if (Find(e.id))
    return absl::AlreadyExistsError("experiment '" + e.id +
                                    "' exists; its arms and weights cannot change: stop it and create a new one");
  if (auto s = Validate(e, *set); !s.ok()) return s;
  if (!e.layer.empty()) {
    auto at = FreeSlice(e, *set);
    if (!at.ok()) return at.status();
    e.traffic_offset = *at;
  }
  e.salt = "exp:" + e.id;
  e.created_ms = clock_->NowMillis();
  auto entry = MakeEntry(e, nullptr);
  if (auto s = Publish(entry); !s.ok()) return s;
  spdlog::info("experiment {} created: {} arms, {}% of viewers{}", e.id, e.arms.size(), e.traffic,
               e.layer.empty() ? "" : ", layer " + e.layer);
  JsonWriter w;
  WriteExperimentJson(entry->def, w);
  return w.Release();
}

std::vector<Experiment> ExperimentCatalogue::Definitions() const {
  std::vector<Experiment> out;
  const std::shared_ptr<const Set> set = set_.load();  // held while iterating
  for (const auto& e : *set) out.push_back(e->def);
  return out;
}

std::vector<std::shared_ptr<const LearnedRanker>> ExperimentCatalogue::ArmModels() const {
  std::vector<std::shared_ptr<const LearnedRanker>> out;
  const std::shared_ptr<const Set> set = set_.load();  // held while iterating
  for (const auto& e : *set)
    if (e->def.running())
      for (const auto& serving : e->serving)
        if (serving && serving->model) out.push_back(serving->model);
  return out;
}

std::string ExperimentCatalogue::ListJson() const {
  JsonWriter w;
  w.BeginObject().Key("experiments").BeginArray();
  const std::shared_ptr<const Set> set = set_.load();  // held while iterating
  for (const auto& e : *set) WriteExperimentJson(e->def, w);
  w.EndArray().EndObject();
  return w.Release();
}

absl::StatusOr<std::string> ExperimentCatalogue::GetJson(const std::string& id) const {
  auto e = Find(id);
  if (!e) return absl::NotFoundError("no experiment '" + id + "'");
  return ExperimentJson(e->def);
}

absl::Status ExperimentCatalogue::Stop(const std::string& id, const std::string& reason) {
  std::lock_guard<std::mutex> lock(admin_mu_);
  auto e = Find(id);
  if (!e) return absl::NotFoundError("no experiment '" + id + "'");
  if (!e->def.running()) return absl::OkStatus();
  Experiment def = e->def;
  def.status = ExperimentStatus::kStopped;
  def.stopped_ms = clock_->NowMillis();
  def.stopped_reason = reason;
  spdlog::info("experiment {} stopped: {}", id, reason);
  return Publish(MakeEntry(std::move(def), e->state));
}

absl::Status ExperimentCatalogue::StopArm(const std::string& id, int arm, const std::string& reason,
                                          const OnArmStop& on_stop) {
  std::lock_guard<std::mutex> lock(admin_mu_);
  auto e = Find(id);
  if (!e || size_t(arm) >= e->def.arms.size() || e->def.arms[size_t(arm)].stopped) return absl::OkStatus();
  Experiment def = e->def;
  ExperimentArm& a = def.arms[size_t(arm)];
  a.stopped = true;
  a.stopped_reason = reason;
  a.stopped_ms = clock_->NowMillis();
  if (on_stop) on_stop(id, a);
  return Publish(MakeEntry(std::move(def), e->state));
}

absl::StatusOr<std::vector<ForcedArm>> ExperimentCatalogue::ParseForcedArms(std::string_view spec) const {
  std::vector<ForcedArm> out;
  for (std::string_view item : Split(spec, ',')) {
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos)
      return absl::InvalidArgumentError("X-Affinity-Force-Arm: '" + std::string(item) +
                                        "' is not experiment=arm (e.g. exp1=treatment)");
    const std::string id(item.substr(0, eq)), arm(item.substr(eq + 1));
    auto e = Find(id);
    if (!e) return absl::InvalidArgumentError("X-Affinity-Force-Arm: no experiment '" + id + "'");
    if (!e->def.running()) return absl::InvalidArgumentError("X-Affinity-Force-Arm: experiment '" + id + "' is stopped");
    int index = -1;
    for (size_t i = 0; i < e->def.arms.size(); ++i)
      if (e->def.arms[i].name == arm) index = int(i);
    if (index < 0) return absl::InvalidArgumentError("X-Affinity-Force-Arm: experiment '" + id + "' has no arm '" + arm + "'");
    out.push_back({id, index});
  }
  return out;
}

Assignment ExperimentCatalogue::Assign(const std::string& viewer_id, Kind target,
                                       const std::vector<ForcedArm>& forced) const {
  Assignment a;
  std::vector<std::shared_ptr<const ArmServing>> serving;
  std::vector<const ExperimentArm*> arms;
  auto serve_in = [&](const ExperimentEntry& e, size_t arm) {
    if (!e.serving[arm]) return;
    serving.push_back(e.serving[arm]);
    arms.push_back(&e.def.arms[arm]);
  };
  const std::shared_ptr<const Set> set = set_.load();  // held while iterating
  for (const auto& e : *set) {
    if (!e->def.running()) continue;
    const ForcedArm* force = nullptr;
    for (const ForcedArm& f : forced)
      if (f.experiment == e->def.id) force = &f;
    if (force && size_t(force->arm) < e->def.arms.size()) {
      // An override: served in that arm, named as forced, never counted.
      a.variant.experiments.push_back({e->def.id, e->def.arms[size_t(force->arm)].name, true});
      serve_in(*e, size_t(force->arm));
      continue;
    }
    if (!e->def.Targets(target)) continue;
    const std::optional<int> arm = AssignArm(e->def, viewer_id);
    // An arm a guardrail stopped serves as the control and is neither named nor counted.
    if (!arm || e->def.arms[size_t(*arm)].stopped) continue;
    a.in.push_back({e, *arm});
    a.variant.experiments.push_back({e->def.id, e->def.arms[size_t(*arm)].name});
    serve_in(*e, size_t(*arm));
  }
  a.variant.serving = Combine(serving, arms);
  return a;
}

std::shared_ptr<const ArmServing> ExperimentCatalogue::Combine(
    const std::vector<std::shared_ptr<const ArmServing>>& serving, const std::vector<const ExperimentArm*>& arms) const {
  if (serving.empty()) return nullptr;
  if (serving.size() == 1) return serving.front();
  // Arms of several layers at once: their settings together (later experiments win on a clash).
  std::vector<std::pair<std::string, ConfigValue>> overrides;
  for (const ExperimentArm* arm : arms) overrides.insert(overrides.end(), arm->overrides.begin(), arm->overrides.end());
  auto cfg = ServingWithOverrides(serving_, overrides);
  auto combined = std::make_shared<ArmServing>(cfg.ok() ? *cfg : serving_);
  for (const auto& s : serving) {
    if (s->model) combined->model = s->model;
    combined->ranker_off = combined->ranker_off || s->ranker_off;
  }
  return combined;
}

}  // namespace affinity
