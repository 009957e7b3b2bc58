#include "experiments/guardrail_evaluator.h"

#include <spdlog/spdlog.h>

#include "base/json_writer.h"
#include "experiments/experiment_entry.h"
#include "experiments/experiment_report.h"
#include "experiments/experiments_options.h"

namespace affinity {
namespace {

constexpr int64_t kCheckpointMs = 5000;

}  // namespace

GuardrailEvaluator::GuardrailEvaluator(ExperimentCatalogue* catalogue, ArmLedger* ledger, AuditLog* audit,
                                       const Clock* clock, const ExperimentsOptions& options)
    : catalogue_(catalogue), ledger_(ledger), audit_(audit), clock_(clock), options_(options) {}

GuardrailEvaluator::~GuardrailEvaluator() { Stop(); }

absl::StatusOr<bool> GuardrailEvaluator::Evaluate() {
  // Exposure totals per creator and cohort: every few seconds (a crash loses at most that much of them).
  const int64_t now = clock_->NowMillis();
  if (now - last_checkpoint_ms_ >= kCheckpointMs) {
    last_checkpoint_ms_ = now;
    ledger_->Checkpoint();
  }
  bool stopped = false;
  const GuardrailOptions go{options_.msprt_tau_relative, options_.guardrail_alpha, options_.guardrail_min_responses};
  const auto set = catalogue_->Entries();  // held while iterating
  for (const auto& e : *set) {
    if (!e->def.running() || e->def.guardrails.empty()) continue;
    ArmLedger::Reading r = ledger_->Read(*e);
    for (size_t arm = 1; arm < e->def.arms.size(); ++arm) {
      if (e->def.arms[arm].stopped) continue;
      const std::optional<std::string> why = GuardrailBreach(e->def, r.figures, arm, go, &r.running_min);
      if (!why) continue;
      if (auto s = StopArm(e->def.id, int(arm), *why); !s.ok()) return s;
      stopped = true;
    }
    ledger_->KeepMinimums(*e, r.running_min);
  }
  return stopped;
}

absl::Status GuardrailEvaluator::StopArm(const std::string& id, int arm, const std::string& reason) {
  return catalogue_->StopArm(id, arm, reason, [&](const std::string&, const ExperimentArm& a) {
    spdlog::warn("experiment {}: arm {} stopped by a guardrail: {}; its viewers are served as the control", id, a.name,
                 reason);
    guardrail_stops_++;
    if (!audit_) return;
    JsonWriter w;
    w.BeginObject().Key("event").String("guardrail_stop").Key("experiment").String(id).Key("arm").String(a.name);
    w.Key("reason").String(reason).Key("ts").Int(a.stopped_ms).EndObject();
    audit_->Record("guardrail_" + id + "_" + a.name, w.Release());
  });
}

void GuardrailEvaluator::Start(int poll_ms) {
  poller_ = std::make_unique<Poller>(poll_ms, [this] { return Evaluate(); });
  poller_->Start();
}

void GuardrailEvaluator::Stop() {
  if (poller_) poller_->Stop();
}

}  // namespace affinity
