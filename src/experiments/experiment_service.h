// Experiments in a running server: their definitions and counters, durable in
// the data dir (the store's experiments column family), assignment of each
// query's viewer, per-arm bookkeeping of responses, errors and attributed
// feedback, reports with their statistics, and the guardrail evaluator that
// stops a harmful arm.
// Thread safety: all methods are safe for concurrent use. Assign() reads an
// atomically swapped set of experiments and never blocks on an admin change;
// bookkeeping takes one experiment's mutex for a few map updates and queues
// its counter deltas for a writer thread (WAL, no fsync, within milliseconds).
// Feedback is attributed through the audit record of the response it names.
#pragma once

#include <atomic>
#include <condition_variable>
#include <thread>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "absl/status/statusor.h"
#include "audit/audit_log.h"
#include "base/clock.h"
#include "base/config.h"
#include "base/poller.h"
#include "events/event.h"
#include "experiments/experiment.h"
#include "experiments/experiment_metrics.h"
#include "serving/query_engine.h"
#include "state/live_state.h"
#include "state/registry.h"
#include "store/store.h"

namespace affinity {

struct EntryState;  // one experiment's counters (experiment_service.cc)

// The experiments a query's viewer is in and how it is served.
struct Assignment {
  QueryVariant variant;
  struct In {
    std::shared_ptr<const void> entry;  // keeps the experiment alive for the bookkeeping
    int arm;
  };
  std::vector<In> in;
};

class ExperimentService {
 public:
  // Loads a model version (for arms that name one).
  using ModelLoader = std::function<absl::StatusOr<std::shared_ptr<const LearnedRanker>>(const std::string&)>;
  // The model versions the registry knows (for validation).
  using ModelVersions = std::function<std::vector<std::string>()>;

  ExperimentService(Store* store, const Config& config, const EntityRegistry* registry,
                    const LiveState* live, AuditLog* audit, const Clock* clock, ModelLoader load_model,
                    ModelVersions model_versions);
  ~ExperimentService();

  // Reads every experiment and its counters from the store.
  absl::Status Load();

  // POST /admin/experiments: InvalidArgument (422) naming the field,
  // AlreadyExists (409) for an id in use.
  absl::StatusOr<std::string> Create(std::string_view json);
  // The same for a definition built in code (a model's canary), validated alike.
  absl::StatusOr<std::string> Create(Experiment e);
  // Every experiment's definition, oldest first.
  std::vector<Experiment> Definitions() const;
  // The models running arms serve (drift is watched for each).
  std::vector<std::shared_ptr<const LearnedRanker>> ArmModels() const;
  // Runs `fn` on one experiment's definition, per-arm figures and per-arm
  // model errors, with its running minimums of always-valid p-values (those
  // `fn` lowers are kept, durably). NotFound for an unknown id.
  using InspectFn = std::function<void(const Experiment& def, const std::vector<ArmFigures>& figures,
                                       const std::vector<std::string>& model_error,
                                       std::map<std::string, double>* running_min)>;
  absl::Status Inspect(const std::string& id, const InspectFn& fn);
  std::string ListJson() const;
  absl::StatusOr<std::string> GetJson(const std::string& id) const;  // NotFound (404)
  absl::StatusOr<std::string> ReportJson(const std::string& id);     // NotFound (404)
  absl::Status Stop(const std::string& id, const std::string& reason);

  // The query path.
  // `forced` (from ParseForcedArms) puts the request in those arms whatever
  // the hash says; they are named in the response (forced: true) and its
  // audit record but never counted: no exposure, response or outcome.
  struct ForcedArm {
    std::string experiment;
    int arm;
  };
  Assignment Assign(const std::string& viewer_id, Kind target, const std::vector<ForcedArm>& forced = {}) const;
  // A QA override, "exp1=treatment[,exp2=arm]" (the X-Affinity-Force-Arm
  // header): InvalidArgument naming an unknown or stopped experiment or an
  // unknown arm.
  absl::StatusOr<std::vector<ForcedArm>> ParseForcedArms(std::string_view spec) const;
  void RecordResponse(const Assignment& a, const std::string& viewer_id, const QueryResponse& resp, double latency_ms);
  void RecordError(const Assignment& a, const std::string& viewer_id);
  // Accepted feedback (durable already): clicks and hides naming a response
  // served in an arm (context.request_id) and one of its results count there.
  void RecordFeedback(const std::vector<Event>& events);

  // Stores the exposure totals per creator and cohort that changed (every five
  // seconds and at stop; a crash loses at most the last five seconds of them).
  void Checkpoint();
  // Finds the creators and cohorts of results served since the last call.
  void Resolve(EntryState& state) const;
  // One pass of the guardrails: stops breached arms; true when it stopped one.
  absl::StatusOr<bool> EvaluateGuardrails();
  // Starts/stops the guardrail evaluator (every poll_ms).
  void Start(int poll_ms);
  void StopEvaluator();
  // Waits until every queued counter delta is written.
  void FlushCounters();

  struct ArmStatus {
    std::string experiment, arm;
    bool running = false;
    int64_t viewers = 0, responses = 0, exposures = 0, clicks = 0, hides = 0;
  };
  // Per-arm counts for /metrics and /admin/stats.
  std::vector<ArmStatus> Status() const;
  uint64_t guardrail_stops() const { return guardrail_stops_.load(); }
  uint64_t write_errors() const { return write_errors_.load(); }

 private:
  struct Entry;
  using Set = std::vector<std::shared_ptr<const Entry>>;

  std::shared_ptr<const Entry> Find(const std::string& id) const;
  // Builds the live form of a definition (arm serving, model loads).
  std::shared_ptr<const Entry> MakeEntry(Experiment def, std::shared_ptr<EntryState> state) const;
  // Replaces (or adds) one entry in the set, persisting its definition.
  absl::Status Publish(std::shared_ptr<const Entry> entry, bool persist);
  absl::Status Validate(const Experiment& e, const Set& set) const;
  // Writes now (feedback: durable before its 202).
  void Write(std::vector<Store::CounterDelta> deltas);
  // Queues for the writer thread, which sums queued deltas per key and writes
  // them in one batch (responses: off the query's thread, so a store write
  // stall never delays a query).
  void Enqueue(std::vector<Store::CounterDelta> deltas);
  void RunWriter();
  // Records into each experiment the assignment names, under its lock, and
  // queues the counter deltas.
  using BookFn = std::function<void(ExperimentMetrics&, int arm, int64_t covariate, std::vector<Store::CounterDelta>*)>;
  void Book(const Assignment& a, const std::string& viewer_id, const BookFn& record);
  // True the first time an outcome key is seen (a bounded memory of them).
  bool FirstOutcome(uint64_t key);
  std::string Report(const Entry& e);
  // Lowers the experiment's running minimums of always-valid p-values to those
  // seen, and stores them when one moved.
  void KeepMinimums(const Entry& e, const std::map<std::string, double>& seen);
  absl::Status StopArm(const std::string& id, int arm, const std::string& reason);

  Store* store_;
  Config config_;
  ExperimentsOptions options_;
  const EntityRegistry* registry_;
  const LiveState* live_;
  AuditLog* audit_;
  const Clock* clock_;
  ModelLoader load_model_;
  ModelVersions model_versions_;
  std::atomic<std::shared_ptr<const Set>> set_;
  std::mutex admin_mu_;  // serialises create, stop and guardrail stops
  std::mutex outcomes_mu_;
  std::unordered_set<uint64_t> outcomes_;  // guarded by outcomes_mu_
  std::deque<uint64_t> outcome_order_;     // guarded by outcomes_mu_
  std::atomic<uint64_t> guardrail_stops_{0}, write_errors_{0};
  int64_t last_checkpoint_ms_ = 0;  // evaluator thread only
  std::unique_ptr<Poller> evaluator_;
  std::mutex writer_mu_;
  std::condition_variable writer_cv_, writer_idle_;
  std::unordered_map<std::string, std::vector<int64_t>> pending_;  // guarded by writer_mu_
  bool writing_ = false, writer_stop_ = false;                      // guarded by writer_mu_
  std::thread writer_;
};

}  // namespace affinity
