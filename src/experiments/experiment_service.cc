#include "experiments/experiment_service.h"

#include "experiments/experiment_entry.h"
#include "experiments/experiment_report.h"
#include "experiments/rocks_experiment_state.h"
#include "experiments/experiments_options.h"

namespace affinity {

ExperimentService::ExperimentService(Store* store, const ServingOptions& serving, const ExperimentsOptions& options,
                                     const EntityRegistry* registry,
                                     const LiveState* live, AuditLog* audit, const Clock* clock,
                                     ModelLoader load_model, ModelVersions model_versions)
    : ExperimentService(std::make_unique<RocksExperimentState>(store), serving, options, registry, live, audit, clock,
                        std::move(load_model), std::move(model_versions)) {}

ExperimentService::ExperimentService(std::unique_ptr<ExperimentStateStore> state, const ServingOptions& serving,
                                     const ExperimentsOptions& options,
                                     const EntityRegistry* registry, const LiveState* live, AuditLog* audit,
                                     const Clock* clock, ModelLoader load_model, ModelVersions model_versions)
    : state_(std::move(state)),
      options_(options),
      catalogue_(state_.get(), serving, clock, std::move(load_model), std::move(model_versions)),
      ledger_(state_.get(), &catalogue_, registry, live, audit, clock, options_),
      evaluator_(&catalogue_, &ledger_, audit, clock, options_) {}

ExperimentService::~ExperimentService() { StopEvaluator(); }

absl::Status ExperimentService::Load() { return catalogue_.Load(); }

absl::Status ExperimentService::Inspect(const std::string& id, const InspectFn& fn) {
  auto e = catalogue_.Find(id);
  if (!e) return absl::NotFoundError("no experiment '" + id + "'");
  ArmLedger::Reading r = ledger_.Read(*e);
  fn(e->def, r.figures, e->model_error, &r.running_min);
  ledger_.KeepMinimums(*e, r.running_min);
  return absl::OkStatus();
}

absl::StatusOr<std::string> ExperimentService::ReportJson(const std::string& id) {
  auto e = catalogue_.Find(id);
  if (!e) return absl::NotFoundError("no experiment '" + id + "'");
  ArmLedger::Reading r = ledger_.Read(*e);
  ReportInputs in{std::move(r.figures), std::move(r.cohort_shares), e->model_error};
  std::string json = BuildReportJson(e->def, in, ReportOptions{options_.msprt_tau_relative, 0.05}, &r.running_min);
  ledger_.KeepMinimums(*e, r.running_min);
  return json;
}

void ExperimentService::StopEvaluator() {
  evaluator_.Stop();
  ledger_.FlushCounters();
  ledger_.Checkpoint();
}

}  // namespace affinity
