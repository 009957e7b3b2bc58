// Experiments in a running server, behind one face for the server's wiring,
// the admin routes and the canary controller. The work is done in three rooms:
//   - the catalogue (experiment_catalogue.h): definitions, validation, layers,
//     assignment, the forced-arm override, create/stop/list/get;
//   - the arm ledger (arm_ledger.h): per-arm bookkeeping of responses, errors
//     and attributed feedback, the counter writer thread, exposure checkpoints;
//   - the guardrail evaluator (guardrail_evaluator.h): the poller that stops
//     harmful arms.
// Their state is kept through an ExperimentStateStore (experiment_state_store.h):
// the store's experiments column family unless another is given.
// The query path goes through ExperimentalQueryEngine (experimental_query_engine.h).
// Thread safety: all methods are safe for concurrent use (see each room).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "audit/audit_log.h"
#include "base/clock.h"
#include "base/config.h"
#include "experiments/experiments_options.h"
#include "events/event.h"
#include "experiments/arm_ledger.h"
#include "experiments/experiment.h"
#include "experiments/experiment_catalogue.h"
#include "experiments/experiment_metrics.h"
#include "experiments/experiment_state_store.h"
#include "experiments/guardrail_evaluator.h"
#include "serving/query_engine.h"
#include "state/live_state.h"
#include "state/registry.h"
#include "store/store.h"

namespace affinity {

class ExperimentService {
 public:
  using ModelLoader = ExperimentCatalogue::ModelLoader;
  using ModelVersions = ExperimentCatalogue::ModelVersions;
  using ForcedArm = affinity::ForcedArm;
  using ArmStatus = ArmLedger::ArmStatus;

  // State kept in `store`'s experiments column family; arms change `serving`.
  ExperimentService(Store* store, const ServingOptions& serving, const ExperimentsOptions& options, const EntityRegistry* registry, const LiveState* live,
                    AuditLog* audit, const Clock* clock, ModelLoader load_model, ModelVersions model_versions);
  // State kept in `state`.
  ExperimentService(std::unique_ptr<ExperimentStateStore> state, const ServingOptions& serving,
                    const ExperimentsOptions& options, const EntityRegistry* registry,
                    const LiveState* live, AuditLog* audit, const Clock* clock, ModelLoader load_model,
                    ModelVersions model_versions);
  ~ExperimentService();

  // Reads every experiment and its counters from the state store.
  absl::Status Load();

  // POST /admin/experiments: InvalidArgument (422) naming the field,
  // AlreadyExists (409) for an id in use.
  absl::StatusOr<std::string> Create(std::string_view json) { return catalogue_.Create(json); }
  // The same for a definition built in code (a model's canary), validated alike.
  absl::StatusOr<std::string> Create(Experiment e) { return catalogue_.Create(std::move(e)); }
  // Every experiment's definition, oldest first.
  std::vector<Experiment> Definitions() const { return catalogue_.Definitions(); }
  // The models running arms serve (drift is watched for each).
  std::vector<std::shared_ptr<const LearnedRanker>> ArmModels() const { return catalogue_.ArmModels(); }
  // Runs `fn` on one experiment's definition, per-arm figures and per-arm
  // model errors, with its running minimums of always-valid p-values (those
  // `fn` lowers are kept, durably). NotFound for an unknown id.
  using InspectFn = std::function<void(const Experiment& def, const std::vector<ArmFigures>& figures,
                                       const std::vector<std::string>& model_error,
                                       std::map<std::string, double>* running_min)>;
  absl::Status Inspect(const std::string& id, const InspectFn& fn);
  std::string ListJson() const { return catalogue_.ListJson(); }
  absl::StatusOr<std::string> GetJson(const std::string& id) const { return catalogue_.GetJson(id); }  // 404
  absl::StatusOr<std::string> ReportJson(const std::string& id);  // NotFound (404)
  absl::Status Stop(const std::string& id, const std::string& reason) { return catalogue_.Stop(id, reason); }

  // The query path (ExperimentalQueryEngine). `forced` (from ParseForcedArms)
  // puts the request in those arms whatever the hash says; they are named in
  // the response (forced: true) and its audit record but never counted.
  Assignment Assign(const std::string& viewer_id, Kind target, const std::vector<ForcedArm>& forced = {}) const {
    return catalogue_.Assign(viewer_id, target, forced);
  }
  // A QA override, "exp1=treatment[,exp2=arm]" (the X-Affinity-Force-Arm
  // header): InvalidArgument naming an unknown or stopped experiment or an arm.
  absl::StatusOr<std::vector<ForcedArm>> ParseForcedArms(std::string_view spec) const {
    return catalogue_.ParseForcedArms(spec);
  }
  // Whether this server takes the override at all (experiments.force_arm_header).
  bool force_arm_header() const { return options_.force_arm_header; }
  void RecordResponse(const Assignment& a, const std::string& viewer_id, const QueryResponse& resp,
                      double latency_ms) {
    ledger_.RecordResponse(a, viewer_id, resp, latency_ms);
  }
  void RecordError(const Assignment& a, const std::string& viewer_id) { ledger_.RecordError(a, viewer_id); }
  // Accepted feedback (durable already): clicks and hides naming a response
  // served in an arm (Event::request_id) and one of its results count there.
  void RecordFeedback(const std::vector<Event>& events) { ledger_.RecordFeedback(events); }

  // Stores the exposure totals per creator and cohort that changed (every five
  // seconds and at stop; a crash loses at most the last five seconds of them).
  void Checkpoint() { ledger_.Checkpoint(); }
  // One pass of the guardrails: stops breached arms; true when it stopped one.
  absl::StatusOr<bool> EvaluateGuardrails() { return evaluator_.Evaluate(); }
  // Starts/stops the guardrail evaluator (every poll_ms); the stop writes
  // every queued counter and the exposure totals.
  void Start(int poll_ms) { evaluator_.Start(poll_ms); }
  void StopEvaluator();
  // Waits until every queued counter delta is written.
  void FlushCounters() { ledger_.FlushCounters(); }

  // Per-arm counts for /metrics and /admin/stats.
  std::vector<ArmStatus> Status() const { return ledger_.Status(); }
  uint64_t guardrail_stops() const { return evaluator_.guardrail_stops(); }
  uint64_t write_errors() const { return ledger_.write_errors(); }

 private:
  // Declared in the order they are built; destroyed in reverse (the evaluator
  // stops before the ledger writes its last counters).
  std::unique_ptr<ExperimentStateStore> state_;
  ExperimentsOptions options_;
  ExperimentCatalogue catalogue_;
  ArmLedger ledger_;
  GuardrailEvaluator evaluator_;
};

}  // namespace affinity
