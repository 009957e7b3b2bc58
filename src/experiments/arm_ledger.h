// The per-arm bookkeeping of running experiments: each response and error of
// a viewer in an experiment, and each click or hide on a served result,
// attributed through the response's audit record (the event's request_id);
// counter deltas go to the ExperimentStateStore, a response's from a writer
// thread (off the query's thread), feedback's at once (durable before its
// 202); exposure totals per creator and cohort are checkpointed now and then.
// It also reads the figures back: per arm for /metrics and /admin/stats, and
// per experiment (with its running minimums) for reports and decisions.
// Thread safety: all methods are safe for concurrent use; bookkeeping takes
// one experiment's mutex for a few map updates.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "audit/audit_log.h"
#include "base/clock.h"
#include "base/config.h"
#include "experiments/experiments_options.h"
#include "events/event.h"
#include "experiments/experiment_catalogue.h"
#include "experiments/experiment_metrics.h"
#include "experiments/experiment_state_store.h"
#include "state/live_state.h"
#include "state/registry.h"

namespace affinity {

class ArmLedger {
 public:
  ArmLedger(ExperimentStateStore* state, const ExperimentCatalogue* catalogue, const EntityRegistry* registry,
            const LiveState* live, AuditLog* audit, const Clock* clock, const ExperimentsOptions& options);
  // Writes what is queued and the exposure totals.
  ~ArmLedger();

  void RecordResponse(const Assignment& a, const std::string& viewer_id, const QueryResponse& resp, double latency_ms);
  void RecordError(const Assignment& a, const std::string& viewer_id);
  // Accepted feedback (durable already): clicks and hides naming a response
  // served in an arm (its request_id) and one of its results count there.
  void RecordFeedback(const std::vector<Event>& events);

  // One experiment's figures and running minimums, its results' creators and
  // cohorts resolved first.
  struct Reading {
    std::vector<ArmFigures> figures;
    std::vector<std::unordered_map<std::string, double>> cohort_shares;
    std::map<std::string, double> running_min;
  };
  Reading Read(const ExperimentEntry& e) const;
  // Lowers the experiment's running minimums of always-valid p-values to those
  // seen, and saves them when one moved.
  void KeepMinimums(const ExperimentEntry& e, const std::map<std::string, double>& seen);

  // Saves the exposure totals per creator and cohort that changed.
  void Checkpoint();
  // Waits until every queued counter delta is written.
  void FlushCounters();

  struct ArmStatus {
    std::string experiment, arm;
    bool running = false;
    int64_t viewers = 0, responses = 0, exposures = 0, clicks = 0, hides = 0;
  };
  // Per-arm counts for /metrics and /admin/stats.
  std::vector<ArmStatus> Status() const;
  uint64_t write_errors() const { return write_errors_.load(); }

 private:
  // Finds the creators and cohorts of results served since the last call.
  void Resolve(EntryState& state) const;
  // Writes now.
  void Write(std::vector<CounterDelta> deltas);
  // Queues for the writer thread, which sums queued deltas per key and writes
  // them in one batch (so a store write stall never delays a query).
  void Enqueue(std::vector<CounterDelta> deltas);
  void RunWriter();
  // Records into each experiment the assignment names, under its lock, and
  // queues the counter deltas.
  using BookFn = std::function<void(ExperimentMetrics&, int arm, int64_t covariate, std::vector<CounterDelta>*)>;
  void Book(const Assignment& a, const std::string& viewer_id, const BookFn& record);
  // The event's request and result when it is a click or hide on a result of
  // a response served in experiments: books it into each.
  void Attribute(const Event& ev, std::vector<CounterDelta>* deltas);
  // True the first time an outcome key is seen (a bounded memory of them).
  bool FirstOutcome(uint64_t key);

  ExperimentStateStore* state_;
  const ExperimentCatalogue* catalogue_;
  const EntityRegistry* registry_;
  const LiveState* live_;
  AuditLog* audit_;
  const Clock* clock_;
  ExperimentsOptions options_;
  std::atomic<uint64_t> write_errors_{0};
  std::mutex outcomes_mu_;
  std::unordered_set<uint64_t> outcomes_;  // guarded by outcomes_mu_
  std::deque<uint64_t> outcome_order_;     // guarded by outcomes_mu_
  std::mutex writer_mu_;
  std::condition_variable writer_cv_, writer_idle_;
  std::unordered_map<std::string, std::vector<int64_t>> pending_;  // guarded by writer_mu_
  bool writing_ = false, writer_stop_ = false;                      // guarded by writer_mu_
  std::thread writer_;
};

}  // namespace affinity
