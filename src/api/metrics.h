// Prometheus metrics of a serving process (prometheus-cpp registry, text format).
// Thread safety: safe for concurrent use.
#pragma once

#include <array>
#include <memory>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "state/storage_guard.h"
#include "api/connection_table.h"
#include "candidates/candidate_set.h"
#include "experiments/experiment_service.h"
#include "server/batch_schedule.h"
#include "state/checkpointer.h"
#include "models/drift_service.h"
#include "admin/feature_service.h"
#include "query/query.h"
#include "admin/service_status.h"

namespace affinity {

class Metrics {
 public:
  Metrics();
  void ObserveRequest(const std::string& route, int status, double seconds);
  void ObserveQuery(const QueryResponse& r);
  void AddEvents(size_t n) { events_->Increment(double(n)); }
  // A write answered from its Idempotency-Key's record instead of applied again.
  void AddIdempotentReplay(const std::string& route) { replays_->Add({{"route", route}}).Increment(); }
  // The gauges: snapshot age, event lag, storage.
  void SetStatus(const StatusReport& r);
  // Per-arm series of every experiment, and the guardrail stops so far.
  void SetExperiments(const std::vector<ExperimentService::ArmStatus>& arms, uint64_t guardrail_stops);
  // From a feedback batch's arrival to its events being durable and applied
  // to the live state (what the next query reads).
  void ObserveEventVisible(double seconds) { event_visible_->Observe(seconds); }
  // Freshness per feature group.
  void SetFreshness(const std::vector<FeatureService::Freshness>& groups);
  // serve --batch-every: runs by outcome, the last one's duration, the next one.
  void SetBatchSchedule(const BatchSchedule::Status& s);
  void SetCheckpoint(const Checkpointer::Status& s);
  // The data dir's volume (state/storage_guard.h).
  void SetStorage(const StorageGuard::State& s);
  // The files refused at load now, by kind (base/refused_file.h).
  void SetRefused(size_t snapshots, size_t models);
  // The HTTP server's connection budget (api/connection_table.h).
  void SetConnections(const ConnectionStats& c);
  // Drift per model and signal (PSI, KS p-value) and whether each model breaches.
  void SetDrift(const std::vector<DriftService::ModelDrift>& models);
  std::string Render() const;

 private:
  void RegisterOperationGauges();  // the constructor's: batch schedule, then RegisterStateGauges

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Histogram>* latency_;
  prometheus::Family<prometheus::Counter>* requests_;
  std::array<prometheus::Histogram*, kNumStages> stages_{};
  std::array<prometheus::Counter*, kNumSources> candidates_{};
  prometheus::Counter* degraded_;
  prometheus::Counter* events_;
  prometheus::Family<prometheus::Counter>* replays_;  // by route
  prometheus::Gauge* snapshot_age_;
  prometheus::Gauge* event_lag_;
  prometheus::Gauge* disk_bytes_;
  prometheus::Gauge* audit_disk_bytes_;
  prometheus::Gauge* pending_compaction_;
  std::array<prometheus::Family<prometheus::Gauge>*, 6> arm_series_{};  // viewers … running
  prometheus::Gauge* guardrail_stops_;
  prometheus::Histogram* event_visible_;
  prometheus::Family<prometheus::Gauge>* freshness_age_;
  prometheus::Family<prometheus::Gauge>* freshness_stale_;
  prometheus::Family<prometheus::Gauge>* batch_runs_;
  prometheus::Family<prometheus::Gauge>* drift_psi_;
  prometheus::Family<prometheus::Gauge>* drift_p_;
  prometheus::Family<prometheus::Gauge>* drift_breach_;
  prometheus::Family<prometheus::Gauge>* batch_duration_;  // samples only with a schedule
  prometheus::Family<prometheus::Gauge>* batch_next_run_;
  prometheus::Family<prometheus::Gauge>* batch_running_;
  prometheus::Family<prometheus::Gauge>* checkpoint_;
  void RegisterStateGauges();
  prometheus::Family<prometheus::Gauge>* refused_;  // by kind: snapshot, model
  prometheus::Family<prometheus::Gauge>* storage_;  // by field: free_bytes, floor_bytes, writable, refused, resumes
  prometheus::Family<prometheus::Gauge>* connections_;  // by field: open, busy, max, accepted, refused, ...
};

}  // namespace affinity
