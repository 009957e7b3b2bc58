#include "experiments/canary.h"

#include <spdlog/spdlog.h>

#include "base/status.h"
#include "experiments/experiment_report.h"
#include "experiments/experiments_options.h"

namespace affinity {

Experiment CanaryExperiment(const ModelVersion& v) {
  const auto& plan = v.rollout;
  Experiment e;
  e.id = CanaryExperimentId(v.version);
  e.kind = ExperimentKind::kCanary;
  e.layer = "canary";  // overlaps any other experiment independently
  e.traffic = 100;
  ExperimentArm control;
  control.name = "control";
  control.weight = 100 - plan.share;
  ExperimentArm canary;
  canary.name = "canary";
  canary.weight = plan.share;
  canary.model_version = v.version;
  canary.ranker = ArmRanker::kLearned;
  e.arms = {control, canary};
  e.guardrails = {{GuardrailMetric::kHideRate, plan.max_increase},
                  {GuardrailMetric::kErrorRate, plan.max_increase},
                  {GuardrailMetric::kLatencyP99Ms, plan.max_latency_increase}};
  return e;
}

CanaryController::CanaryController(std::string data_dir, ExperimentService* experiments,
                                   const ExperimentsOptions& options)
    : registry_(std::move(data_dir)), experiments_(experiments), options_(options) {}

CanaryController::~CanaryController() { Stop(); }

absl::StatusOr<bool> CanaryController::Step() {
  AFF_ASSIGN_OR_RETURN(RegistryState st, registry_.Read());
  bool changed = false;
  // Canary experiments whose model is no longer the registry's canary ended
  // elsewhere (decided, promoted by hand, superseded): stop them.
  for (const Experiment& e : experiments_->Definitions()) {
    if (e.kind != ExperimentKind::kCanary || !e.running() || e.arms.size() < 2) continue;
    const std::string& version = e.arms[1].model_version;
    if (version == st.canary) continue;
    const ModelVersion* v = st.Find(version);
    const std::string why = v && v->rollout.state != ModelState::kRegistered
                                ? "canary " + std::string(ModelStateName(v->rollout.state)) + ": " + v->rollout.note
                                : "canary ended";
    AFF_RETURN_IF_ERROR(experiments_->Stop(e.id, why));
    changed = true;
  }
  if (st.canary.empty()) return changed;
  const ModelVersion* v = st.Find(st.canary);
  if (!v) return absl::DataLossError("the registry's canary " + st.canary + " is not among its versions");
  AFF_ASSIGN_OR_RETURN(bool decided, Decide(*v));
  return changed || decided;
}

absl::StatusOr<bool> CanaryController::Decide(const ModelVersion& v) {
  const std::string id = CanaryExperimentId(v.version);
  CanaryVerdict verdict;
  bool stopped_by_hand = false;
  std::string stopped_reason;
  CanaryOptions co{v.rollout.min_viewers, options_.guardrail_alpha, options_.msprt_tau_relative};
  const absl::Status inspected = experiments_->Inspect(
      id, [&](const Experiment& def, const std::vector<ArmFigures>& figures, const std::vector<std::string>& model_error,
              std::map<std::string, double>* running_min) {
        if (!def.running()) {
          stopped_by_hand = true;
          stopped_reason = def.stopped_reason;
          return;
        }
        if (model_error.size() > 1 && !model_error[1].empty()) {
          verdict.action = CanaryVerdict::kRollBack;
          verdict.why = model_error[1];
          return;
        }
        verdict = JudgeCanary(def, figures, co, running_min);
      });
  if (absl::IsNotFound(inspected)) {
    auto created = experiments_->Create(CanaryExperiment(v));
    if (!created.ok()) {
      const std::string why = "its canary could not start: " + std::string(created.status().message());
      spdlog::error("model {}: {}", v.version, why);
      AFF_RETURN_IF_ERROR(registry_.FinishCanary(v.version, false, why));
      return true;
    }
    spdlog::info("model {}: canary started on {}% of viewers (experiment {}; decided after {} canary viewers)",
                 v.version, v.rollout.share, id, v.rollout.min_viewers);
    AFF_RETURN_IF_ERROR(registry_.MarkCanaryRunning(v.version, id));
    return true;
  }
  AFF_RETURN_IF_ERROR(inspected);
  bool changed = false;
  if (v.rollout.state == ModelState::kCanaryPending) {  // started before a crash that came before this mark
    AFF_RETURN_IF_ERROR(registry_.MarkCanaryRunning(v.version, id));
    changed = true;
  }
  if (stopped_by_hand) {
    const std::string why = "its experiment was stopped" + (stopped_reason.empty() ? "" : ": " + stopped_reason);
    spdlog::warn("model {}: canary rolled back: {}", v.version, why);
    AFF_RETURN_IF_ERROR(registry_.FinishCanary(v.version, false, why));
    return true;
  }
  if (verdict.action == CanaryVerdict::kWait) return changed;
  const bool promote = verdict.action == CanaryVerdict::kPromote;
  if (promote)
    spdlog::info("model {}: canary promoted: {}", v.version, verdict.why);
  else
    spdlog::warn("model {}: canary rolled back: {}", v.version, verdict.why);
  // The registry first (servers swap the default model from it), then the experiment.
  AFF_RETURN_IF_ERROR(registry_.FinishCanary(v.version, promote, verdict.why));
  AFF_RETURN_IF_ERROR(experiments_->Stop(id, std::string(promote ? "promoted: " : "rolled back: ") + verdict.why));
  return true;
}

void CanaryController::Start(int poll_ms) {
  poller_ = std::make_unique<Poller>(poll_ms, [this, last = std::string()]() mutable -> absl::StatusOr<bool> {
    auto r = Step();
    const std::string error = r.ok() ? "" : std::string(r.status().message());
    if (!error.empty() && error != last) spdlog::error("canary rollout: {}", error);  // once per distinct error
    last = error;
    return r;
  });
  poller_->Start();
}

void CanaryController::Stop() {
  if (poller_) poller_->Stop();
}

}  // namespace affinity
