#include "experiments/experiment_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>

#include "absl/strings/str_format.h"
#include "base/json_writer.h"
#include "base/strings.h"
#include "base/poller.h"
#include "experiments/experiment_entry.h"
#include "experiments/experiment_report.h"

namespace affinity {

namespace {

constexpr int64_t kCheckpointMs = 5000;

std::string DefinitionKey(const std::string& id) { return "d/" + id; }
std::string StateKey(const std::string& id) { return "s/" + id; }

}  // namespace

ExperimentService::ExperimentService(Store* store, const Config& config, const EntityRegistry* registry, const LiveState* live, AuditLog* audit,
                                     const Clock* clock, ModelLoader load_model, ModelVersions model_versions)
    : store_(store),
      config_(config),
      options_(config.experiments),
      registry_(registry),
      live_(live),
      audit_(audit),
      clock_(clock),
      load_model_(std::move(load_model)),
      model_versions_(std::move(model_versions)) {
  set_.store(std::make_shared<const Set>());
  writer_ = std::thread([this] { RunWriter(); });
}

ExperimentService::~ExperimentService() {
  StopEvaluator();
  {
    std::lock_guard<std::mutex> lock(writer_mu_);
    writer_stop_ = true;
  }
  writer_cv_.notify_all();
  writer_.join();
  Checkpoint();
}

std::shared_ptr<const ExperimentService::Entry> ExperimentService::MakeEntry(Experiment def,
                                                                           std::shared_ptr<EntryState> state) const {
  auto e = std::make_shared<Entry>();
  e->serving.resize(def.arms.size());
  e->model_error.resize(def.arms.size());
  for (size_t i = 0; i < def.arms.size(); ++i) {
    const ExperimentArm& arm = def.arms[i];
    if (arm.model_version.empty() && arm.ranker.empty() && arm.overrides.empty()) continue;
    auto cfg = config_.WithOverrides(arm.overrides);
    auto serving = std::make_shared<ArmServing>(cfg.ok() ? cfg->serving : config_.serving);
    if (!cfg.ok()) e->model_error[i] = "overrides not applied: " + std::string(cfg.status().message());
    serving->ranker_off = arm.ranker == "off";
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

absl::Status ExperimentService::Load() {
  std::vector<Experiment> defs;
  absl::Status bad;
  auto s = store_->ScanExperimentRecords("d/", [&](std::string_view, std::string_view value) {
    auto e = ParseStoredExperiment(value);
    if (e.ok()) defs.push_back(*std::move(e));
    else if (bad.ok()) bad = e.status();
  });
  if (!s.ok()) return s;
  if (!bad.ok()) return absl::DataLossError("a stored experiment does not read: " + std::string(bad.message()));
  auto set = std::make_shared<Set>();
  for (Experiment& def : defs) {
    auto state = std::make_shared<EntryState>(def.id, def.arms.size());
    const std::string prefix = ExperimentMetrics::Prefix(def.id);
    auto st = store_->ScanExperimentRecords(prefix, [&](std::string_view key, std::string_view value) {
      state->metrics.LoadCounter(key.substr(prefix.size()), DecodeCounters(value));
    });
    if (!st.ok()) return st;
    st = store_->ScanExperimentRecords(StateKey(def.id), [&](std::string_view key, std::string_view value) {
      if (key != StateKey(def.id)) return;
      ReadRunningMinimums(value, &state->avp);
    });
    if (!st.ok()) return st;
    set->push_back(MakeEntry(std::move(def), state));
  }
  std::sort(set->begin(), set->end(), [](const auto& a, const auto& b) {
    return a->def.created_ms != b->def.created_ms ? a->def.created_ms < b->def.created_ms : a->def.id < b->def.id;
  });
  set_.store(std::move(set));
  return absl::OkStatus();
}

std::shared_ptr<const ExperimentService::Entry> ExperimentService::Find(const std::string& id) const {
  const std::shared_ptr<const Set> set = set_.load();  // held while iterating
  for (const auto& e : *set)
    if (e->def.id == id) return e;
  return nullptr;
}

absl::Status ExperimentService::Validate(const Experiment& e, const Set& set) const {
  std::vector<std::string> versions = model_versions_ ? model_versions_() : std::vector<std::string>();
  for (size_t i = 0; i < e.arms.size(); ++i) {
    const ExperimentArm& arm = e.arms[i];
    const std::string where = "arms[" + std::to_string(i) + "].";
    if (!arm.model_version.empty() && std::find(versions.begin(), versions.end(), arm.model_version) == versions.end())
      return absl::InvalidArgumentError(where + "model_version: unknown model version '" + arm.model_version + "'");
    if (auto c = config_.WithOverrides(arm.overrides); !c.ok())
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

absl::Status ExperimentService::Publish(std::shared_ptr<const Entry> entry, bool persist) {
  if (persist) {
    if (auto s = store_->PutExperimentRecord(DefinitionKey(entry->def.id), ExperimentJson(entry->def)); !s.ok())
      return s;
  }
  auto next = std::make_shared<Set>(*set_.load());
  bool replaced = false;
  for (auto& e : *next)
    if (e->def.id == entry->def.id) e = entry, replaced = true;
  if (!replaced) next->push_back(std::move(entry));
  set_.store(std::move(next));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ExperimentService::Create(std::string_view json) {
  auto parsed = ParseExperiment(json);
  if (!parsed.ok()) return parsed.status();
  return Create(*std::move(parsed));
}

std::vector<Experiment> ExperimentService::Definitions() const {
  std::vector<Experiment> out;
  const std::shared_ptr<const Set> set = set_.load();  // held while iterating
  for (const auto& e : *set) out.push_back(e->def);
  return out;
}

std::vector<std::shared_ptr<const LearnedRanker>> ExperimentService::ArmModels() const {
  std::vector<std::shared_ptr<const LearnedRanker>> out;
  const std::shared_ptr<const Set> set = set_.load();  // held while iterating
  for (const auto& e : *set)
    if (e->def.running())
      for (const auto& serving : e->serving)
        if (serving && serving->model) out.push_back(serving->model);
  return out;
}

absl::Status ExperimentService::Inspect(const std::string& id, const InspectFn& fn) {
  auto e = Find(id);
  if (!e) return absl::NotFoundError("no experiment '" + id + "'");
  Resolve(*e->state);
  std::vector<ArmFigures> figures;
  std::map<std::string, double> avp;
  {
    std::lock_guard<std::mutex> lock(e->state->mu);
    figures = e->state->metrics.Figures();
    avp = e->state->avp;
  }
  fn(e->def, figures, e->model_error, &avp);
  KeepMinimums(*e, avp);
  return absl::OkStatus();
}

absl::StatusOr<std::string> ExperimentService::Create(Experiment e) {
  std::lock_guard<std::mutex> lock(admin_mu_);
  const auto set = set_.load();
  if (Find(e.id))
    return absl::AlreadyExistsError("experiment '" + e.id +
                                    "' exists; its arms and weights cannot change: stop it and create a new one");
  if (auto s = Validate(e, *set); !s.ok()) return s;
  // The first free slice of the layer: experiments in one layer take disjoint
  // slices of one hash of the viewer.
  if (!e.layer.empty()) {
    std::vector<std::pair<int, int>> taken;
    for (const auto& other : *set)
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
    e.traffic_offset = at;
  }
  e.salt = "exp:" + e.id;
  e.created_ms = clock_->NowMillis();
  auto entry = MakeEntry(e, nullptr);
  if (auto s = Publish(entry, true); !s.ok()) return s;
  spdlog::info("experiment {} created: {} arms, {}% of viewers{}", e.id, e.arms.size(), e.traffic,
               e.layer.empty() ? "" : ", layer " + e.layer);
  JsonWriter w;
  WriteExperimentJson(entry->def, w);
  return w.Release();
}

std::string ExperimentService::ListJson() const {
  JsonWriter w;
  w.BeginObject().Key("experiments").BeginArray();
  const std::shared_ptr<const Set> set = set_.load();  // held while iterating
  for (const auto& e : *set) WriteExperimentJson(e->def, w);
  w.EndArray().EndObject();
  return w.Release();
}

absl::StatusOr<std::string> ExperimentService::GetJson(const std::string& id) const {
  auto e = Find(id);
  if (!e) return absl::NotFoundError("no experiment '" + id + "'");
  return ExperimentJson(e->def);
}

absl::Status ExperimentService::Stop(const std::string& id, const std::string& reason) {
  std::lock_guard<std::mutex> lock(admin_mu_);
  auto e = Find(id);
  if (!e) return absl::NotFoundError("no experiment '" + id + "'");
  if (!e->def.running()) return absl::OkStatus();
  Experiment def = e->def;
  def.status = "stopped";
  def.stopped_ms = clock_->NowMillis();
  def.stopped_reason = reason;
  spdlog::info("experiment {} stopped: {}", id, reason);
  return Publish(MakeEntry(std::move(def), e->state), true);
}

absl::Status ExperimentService::StopArm(const std::string& id, int arm, const std::string& reason) {
  std::lock_guard<std::mutex> lock(admin_mu_);
  auto e = Find(id);
  if (!e || size_t(arm) >= e->def.arms.size() || e->def.arms[size_t(arm)].stopped) return absl::OkStatus();
  Experiment def = e->def;
  ExperimentArm& a = def.arms[size_t(arm)];
  a.stopped = true;
  a.stopped_reason = reason;
  a.stopped_ms = clock_->NowMillis();
  spdlog::warn("experiment {}: arm {} stopped by a guardrail: {}; its viewers are served as the control", id, a.name,
               reason);
  guardrail_stops_++;
  if (audit_) {
    JsonWriter w;
    w.BeginObject().Key("event").String("guardrail_stop").Key("experiment").String(id).Key("arm").String(a.name);
    w.Key("reason").String(reason).Key("ts").Int(a.stopped_ms).EndObject();
    audit_->Record("guardrail_" + id + "_" + a.name, w.Release());
  }
  return Publish(MakeEntry(std::move(def), e->state), true);
}

absl::StatusOr<std::vector<ExperimentService::ForcedArm>> ExperimentService::ParseForcedArms(
    std::string_view spec) const {
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

Assignment ExperimentService::Assign(const std::string& viewer_id, Kind target,
                                     const std::vector<ForcedArm>& forced) const {
  Assignment a;
  std::vector<std::shared_ptr<const ArmServing>> serving;
  std::vector<const ExperimentArm*> arms;
  const std::shared_ptr<const Set> set = set_.load();  // held while iterating
  for (const auto& e : *set) {
    if (!e->def.running()) continue;
    const ForcedArm* force = nullptr;
    for (const ForcedArm& f : forced)
      if (f.experiment == e->def.id) force = &f;
    if (force && size_t(force->arm) < e->def.arms.size()) {
      // An override: served in that arm, named as forced, never counted.
      a.variant.experiments.push_back({e->def.id, e->def.arms[size_t(force->arm)].name, true});
      if (e->serving[size_t(force->arm)]) {
        serving.push_back(e->serving[size_t(force->arm)]);
        arms.push_back(&e->def.arms[size_t(force->arm)]);
      }
      continue;
    }
    if (!e->def.Targets(target)) continue;
    const std::optional<int> arm = AssignArm(e->def, viewer_id);
    // An arm a guardrail stopped serves as the control and is neither named nor counted.
    if (!arm || e->def.arms[size_t(*arm)].stopped) continue;
    a.in.push_back({e, *arm});
    a.variant.experiments.push_back({e->def.id, e->def.arms[size_t(*arm)].name});
    if (e->serving[size_t(*arm)]) {
      serving.push_back(e->serving[size_t(*arm)]);
      arms.push_back(&e->def.arms[size_t(*arm)]);
    }
  }
  if (serving.size() == 1) {
    a.variant.serving = serving.front();
  } else if (serving.size() > 1) {
    // Arms of several layers at once: their settings together (later experiments win on a clash).
    std::vector<std::pair<std::string, ConfigValue>> overrides;
    for (const ExperimentArm* arm : arms) overrides.insert(overrides.end(), arm->overrides.begin(), arm->overrides.end());
    auto cfg = config_.WithOverrides(overrides);
    auto combined = std::make_shared<ArmServing>(cfg.ok() ? cfg->serving : config_.serving);
    for (const auto& s : serving) {
      if (s->model) combined->model = s->model;
      combined->ranker_off = combined->ranker_off || s->ranker_off;
    }
    a.variant.serving = std::move(combined);
  }
  return a;
}

absl::StatusOr<std::string> ExperimentService::ReportJson(const std::string& id) {
  auto e = Find(id);
  if (!e) return absl::NotFoundError("no experiment '" + id + "'");
  return Report(*e);
}

std::string ExperimentService::Report(const Entry& e) {
  Resolve(*e.state);
  ReportInputs in;
  std::map<std::string, double> avp;
  {
    std::lock_guard<std::mutex> lock(e.state->mu);
    in.figures = e.state->metrics.Figures();
    in.cohort_shares = e.state->metrics.CohortShares();
    avp = e.state->avp;
  }
  in.model_error = e.model_error;
  std::string json = BuildReportJson(e.def, in, ReportOptions{options_.msprt_tau_relative, 0.05}, &avp);
  KeepMinimums(e, avp);
  return json;
}

void ExperimentService::KeepMinimums(const Entry& e, const std::map<std::string, double>& seen) {
  std::map<std::string, double> all;
  {
    std::lock_guard<std::mutex> lock(e.state->mu);
    bool lowered = false;
    for (const auto& [k, v] : seen) {
      auto [it, inserted] = e.state->avp.try_emplace(k, v);
      if (inserted || v < it->second) it->second = v, lowered = true;
    }
    if (!lowered) return;
    all = e.state->avp;
  }
  // A restarted server resumes each running minimum where it was.
  if (!store_->PutExperimentRecord(StateKey(e.def.id), RunningMinimumsJson(all)).ok()) write_errors_++;
}

void ExperimentService::Resolve(EntryState& state) const {
  ExperimentMetrics::Unresolved u;
  {
    std::lock_guard<std::mutex> lock(state.mu);
    u = state.metrics.TakeUnresolved();
  }
  if (u.responses.empty()) return;
  // Creators and cohorts of the results, looked up and summed without the lock,
  // so that queries wait at most for one short merge of the sums.
  std::vector<std::unordered_map<uint32_t, int64_t>> creators;
  std::vector<std::unordered_map<std::string, int64_t>> cohorts;
  for (const auto& [arm, results] : u.responses) {
    if (arm < 0) continue;
    if (size_t(arm) >= creators.size()) creators.resize(size_t(arm) + 1), cohorts.resize(size_t(arm) + 1);
    for (uint32_t bits : results) {
      const Ref r = Ref::FromBits(bits);
      const Ref creator = r.kind() == Kind::kItem ? registry_->CreatorOf(r) : r;
      creators[size_t(arm)][creator.bits]++;
      auto info = registry_->Get(r);
      cohorts[size_t(arm)][info ? info->cohort : ""]++;
    }
  }
  std::lock_guard<std::mutex> lock(state.mu);
  for (size_t arm = 0; arm < creators.size(); ++arm)
    state.metrics.AddResolvedCounts(int(arm), creators[arm], cohorts[arm]);
}

void ExperimentService::Checkpoint() {
  const std::shared_ptr<const Set> set = set_.load();  // held while iterating
  for (const auto& e : *set) {
    Resolve(*e->state);
    ExperimentMetrics::Dirty dirty;
    {
      std::lock_guard<std::mutex> lock(e->state->mu);
      dirty = e->state->metrics.TakeDirty();
    }
    dirty.Deduplicate();  // outside the lock: queries keep recording meanwhile
    std::vector<Store::CounterDelta> totals;
    {
      std::lock_guard<std::mutex> lock(e->state->mu);
      totals = e->state->metrics.Totals(dirty);
    }
    if (!totals.empty() && !store_->PutCounters(totals).ok()) write_errors_++;
  }
}

absl::StatusOr<bool> ExperimentService::EvaluateGuardrails() {
  // Exposure totals per creator and cohort: every few seconds (a crash loses at most that much of them).
  const int64_t now = clock_->NowMillis();
  if (now - last_checkpoint_ms_ >= kCheckpointMs) {
    last_checkpoint_ms_ = now;
    Checkpoint();
  }
  bool stopped = false;
  const std::shared_ptr<const Set> set = set_.load();  // held while iterating
  for (const auto& e : *set) {
    if (!e->def.running() || e->def.guardrails.empty()) continue;
    std::vector<ArmFigures> figures;
    std::map<std::string, double> avp;
    Resolve(*e->state);
    {
      std::lock_guard<std::mutex> lock(e->state->mu);
      figures = e->state->metrics.Figures();
      avp = e->state->avp;
    }
    GuardrailOptions go{options_.msprt_tau_relative, options_.guardrail_alpha, options_.guardrail_min_responses};
    for (size_t arm = 1; arm < e->def.arms.size(); ++arm) {
      if (e->def.arms[arm].stopped) continue;
      const std::string why = GuardrailBreach(e->def, figures, arm, go, &avp);
      if (why.empty()) continue;
      if (auto s = StopArm(e->def.id, int(arm), why); !s.ok()) return s;
      stopped = true;
    }
    KeepMinimums(*e, avp);
  }
  return stopped;
}

void ExperimentService::Start(int poll_ms) {
  evaluator_ = std::make_unique<Poller>(poll_ms, [this] { return EvaluateGuardrails(); });
  evaluator_->Start();
}

void ExperimentService::StopEvaluator() {
  if (evaluator_) evaluator_->Stop();
  FlushCounters();
  Checkpoint();
}

}  // namespace affinity
