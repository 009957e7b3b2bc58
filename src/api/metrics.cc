#include "api/metrics.h"

#include <prometheus/text_serializer.h>

#include <sstream>

namespace affinity {

namespace {
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const prometheus::Histogram::BucketBoundaries b = {0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005,
                                                            0.01,   0.02,    0.05,   0.1,   0.25,  1.0};
  return b;
}
}  // namespace

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  latency_ = &prometheus::BuildHistogram()
                  .Name("affinity_http_request_duration_seconds")
                  .Help("HTTP request latency by route")
                  .Register(*registry_);
  requests_ = &prometheus::BuildCounter()
                   .Name("affinity_http_requests_total")
                   .Help("HTTP requests by route and status")
                   .Register(*registry_);
  auto& stage = prometheus::BuildHistogram()
                    .Name("affinity_query_stage_duration_seconds")
                    .Help("Query pipeline latency by stage")
                    .Register(*registry_);
  for (int s = 0; s < kNumStages; ++s) stages_[s] = &stage.Add({{"stage", StageName(Stage(s))}}, LatencyBuckets());
  auto& cand = prometheus::BuildCounter()
                   .Name("affinity_candidates_total")
                   .Help("Candidates produced, by source")
                   .Register(*registry_);
  for (int s = 0; s < kNumSources; ++s) candidates_[s] = &cand.Add({{"source", SourceName(Source(s))}});
  degraded_ = &prometheus::BuildCounter()
                   .Name("affinity_query_degraded_total")
                   .Help("Queries that skipped a source to meet their deadline")
                   .Register(*registry_)
                   .Add({});
  events_ = &prometheus::BuildCounter()
                 .Name("affinity_events_ingested_total")
                 .Help("Feedback events accepted")
                 .Register(*registry_)
                 .Add({});
  replays_ = &prometheus::BuildCounter()
                  .Name("affinity_idempotent_replays_total")
                  .Help("Writes answered with their Idempotency-Key's first response instead of applied again, by route")
                  .Register(*registry_);
  for (const char* route : {"feedback", "entities"}) replays_->Add({{"route", route}});
  snapshot_age_ = &prometheus::BuildGauge()
                       .Name("affinity_snapshot_age_seconds")
                       .Help("Age of the serving batch snapshot")
                       .Register(*registry_)
                       .Add({});
  event_lag_ = &prometheus::BuildGauge()
                    .Name("affinity_snapshot_event_lag_seconds")
                    .Help("Newest event time minus the snapshot watermark time")
                    .Register(*registry_)
                    .Add({});
  auto& disk = prometheus::BuildGauge()
                   .Name("affinity_store_disk_bytes")
                   .Help("Live table files of the data dir's store, by part")
                   .Register(*registry_);
  disk_bytes_ = &disk.Add({{"part", "all"}});
  audit_disk_bytes_ = &disk.Add({{"part", "audit"}});
  pending_compaction_ = &prometheus::BuildGauge()
                             .Name("affinity_store_pending_compaction_bytes")
                             .Help("Bytes the store's compactions are estimated to still rewrite")
                             .Register(*registry_)
                             .Add({});
  const char* names[6][2] = {{"affinity_experiment_viewers", "Viewers assigned to the arm"},
                             {"affinity_experiment_responses", "Responses served in the arm"},
                             {"affinity_experiment_exposures", "Results served in the arm"},
                             {"affinity_experiment_clicks", "Clicks attributed to the arm"},
                             {"affinity_experiment_hides", "Hides attributed to the arm"},
                             {"affinity_experiment_arm_running", "1 while the arm serves, 0 once stopped"}};
  for (size_t i = 0; i < 6; ++i)
    arm_series_[i] = &prometheus::BuildGauge().Name(names[i][0]).Help(names[i][1]).Register(*registry_);
  guardrail_stops_ = &prometheus::BuildGauge()
                          .Name("affinity_experiment_guardrail_stops")
                          .Help("Arms stopped by a guardrail since the server started")
                          .Register(*registry_)
                          .Add({});
  event_visible_ = &prometheus::BuildHistogram()
                        .Name("affinity_event_visible_seconds")
                        .Help("From a feedback batch's arrival to its events being durable and visible to queries")
                        .Register(*registry_)
                        .Add({}, LatencyBuckets());
  freshness_age_ = &prometheus::BuildGauge()
                        .Name("affinity_feature_freshness_age_seconds")
                        .Help("Seconds since the feature group's newest value (batch: its snapshot; stream: the "
                              "newest applied event)")
                        .Register(*registry_);
  drift_psi_ = &prometheus::BuildGauge()
                    .Name("affinity_drift_psi")
                    .Help("Population stability index of a model's served rows against its training reference, by signal")
                    .Register(*registry_);
  drift_p_ = &prometheus::BuildGauge()
                  .Name("affinity_drift_ks_p_value")
                  .Help("Two-sample Kolmogorov-Smirnov p-value of a model's served rows against its training reference")
                  .Register(*registry_);
  drift_breach_ = &prometheus::BuildGauge()
                       .Name("affinity_drift_breach")
                       .Help("1 while a model's drift exceeds the configured thresholds")
                       .Register(*registry_);
  RegisterOperationGauges();
}

// The background work's gauges: the scheduled batch, the volume, the checkpoint.
void Metrics::RegisterOperationGauges() {
  batch_runs_ = &prometheus::BuildGauge()
                     .Name("affinity_batch_runs")
                     .Help("Scheduled batch runs (serve --batch-every) since the server started, by outcome")
                     .Register(*registry_);
  batch_duration_ = &prometheus::BuildGauge()
                         .Name("affinity_batch_last_duration_seconds")
                         .Help("How long the last scheduled batch run took")
                         .Register(*registry_);
  batch_next_run_ = &prometheus::BuildGauge()
                         .Name("affinity_batch_next_run_timestamp_seconds")
                         .Help("When the next scheduled batch run starts (unix seconds)")
                         .Register(*registry_);
  batch_running_ = &prometheus::BuildGauge()
                        .Name("affinity_batch_running")
                        .Help("1 while a scheduled batch run is in progress")
                        .Register(*registry_);
  RegisterStateGauges();
}

// The gauges of the data dir's state: its volume, the live state's checkpoint,
// stale feature groups, the files refused at load and the HTTP connections.
void Metrics::RegisterStateGauges() {
  storage_ = &prometheus::BuildGauge()
                 .Name("affinity_storage")
                 .Help("The data dir's volume (field: free_bytes, total_bytes, floor_bytes = storage.min_free_mb, "
                       "writable = 1 while writes are admitted, read_only = 1 when the store opened read-only, "
                       "refused = writes refused with 507 so far, resumes = times writes flowed again)")
                 .Register(*registry_);
  checkpoint_ = &prometheus::BuildGauge()
                    .Name("affinity_live_state_checkpoint")
                    .Help("The live state's newest checkpoint (field: offset = log offset covered, events, "
                          "events_since, created_timestamp_seconds, bytes, write_seconds, written, failures) and "
                          "how this server's state was loaded (load_seconds, load_replayed_events, "
                          "load_from_checkpoint)")
                    .Register(*registry_);
  freshness_stale_ = &prometheus::BuildGauge()
                          .Name("affinity_feature_freshness_stale")
                          .Help("1 while the feature group is past its TTL (its values are masked at read)")
                          .Register(*registry_);
  refused_ = &prometheus::BuildGauge()
                 .Name("affinity_refused_files")
                 .Help("Files refused now because they failed verification at load (kind: snapshot = versions "
                       "refused, model = model versions refused); 0 when everything loaded serves")
                 .Register(*registry_);
  refused_->Add({{"kind", "snapshot"}}).Set(0);
  refused_->Add({{"kind", "model"}}).Set(0);
  connections_ = &prometheus::BuildGauge()
                     .Name("affinity_http_connections")
                     .Help("The HTTP server's connections (field: open, busy = in a request, max = the cap, "
                           "accepted, refused = answered 503 at the cap with none idle, evicted_idle = idle ones "
                           "closed for a new one, header_timeouts, idle_timeouts, accept_errors; all but open, busy "
                           "and max count since start)")
                     .Register(*registry_);
}

void Metrics::SetConnections(const ConnectionStats& c) {
  auto set = [&](const char* field, double v) { connections_->Add({{"field", field}}).Set(v); };
  set("open", double(c.open));
  set("busy", double(c.busy));
  set("max", double(c.cap));
  set("accepted", double(c.accepted));
  set("refused", double(c.refused));
  set("evicted_idle", double(c.evicted));
  set("header_timeouts", double(c.header_timeouts));
  set("idle_timeouts", double(c.idle_timeouts));
  set("accept_errors", double(c.accept_errors));
}

void Metrics::SetRefused(size_t snapshots, size_t models) {
  refused_->Add({{"kind", "snapshot"}}).Set(double(snapshots));
  refused_->Add({{"kind", "model"}}).Set(double(models));
}

void Metrics::SetBatchSchedule(const BatchSchedule::Status& s) {
  batch_runs_->Add({{"outcome", "ok"}}).Set(double(s.runs - s.failures));
  batch_runs_->Add({{"outcome", "failed"}}).Set(double(s.failures));
  batch_duration_->Add({}).Set(s.last_duration_s);
  batch_next_run_->Add({}).Set(double(s.next_run_ms) / 1000.0);
  batch_running_->Add({}).Set(s.running ? 1 : 0);
}

void Metrics::SetStorage(const StorageGuard::State& s) {
  auto set = [&](const char* field, double v) { storage_->Add({{"field", field}}).Set(v); };
  set("free_bytes", double(s.free_bytes));
  set("total_bytes", double(s.total_bytes));
  set("floor_bytes", double(s.floor_bytes));
  set("writable", s.writable ? 1 : 0);
  set("read_only", s.read_only ? 1 : 0);
  set("refused", double(s.refused));
  set("resumes", double(s.resumes));
}

void Metrics::SetCheckpoint(const Checkpointer::Status& s) {
  auto set = [&](const char* field, double v) { checkpoint_->Add({{"field", field}}).Set(v); };
  if (s.last) {
    set("offset", double(s.last->offset));
    set("events", double(s.last->events));
    set("created_timestamp_seconds", double(s.last->created_ms) / 1000.0);
    set("bytes", double(s.last->bytes));
    if (s.last_written_here) set("write_seconds", s.last->seconds);
  }
  set("events_since", double(s.events_since));
  set("written", double(s.written));
  set("failures", double(s.failures));
  set("load_seconds", s.load.seconds);
  set("load_replayed_events", double(s.load.replayed));
  set("load_from_checkpoint", s.load.from_checkpoint ? 1 : 0);
}

void Metrics::SetDrift(const std::vector<DriftService::ModelDrift>& models) {
  for (const auto& m : models) {
    if (!m.has_reference) continue;
    drift_breach_->Add({{"model", m.model}}).Set(m.report.breach ? 1 : 0);
    for (const auto& s : m.report.signals) {
      drift_psi_->Add({{"model", m.model}, {"signal", s.name}}).Set(s.psi);
      drift_p_->Add({{"model", m.model}, {"signal", s.name}}).Set(s.p_value);
    }
  }
}

void Metrics::SetFreshness(const std::vector<FeatureService::Freshness>& groups) {
  for (const auto& g : groups) {
    if (!g.has_value) continue;
    freshness_age_->Add({{"group", g.group}}).Set(g.age_seconds);
    freshness_stale_->Add({{"group", g.group}}).Set(g.stale ? 1 : 0);
  }
}

void Metrics::SetExperiments(const std::vector<ExperimentService::ArmStatus>& arms, uint64_t guardrail_stops) {
  for (const auto& a : arms) {
    const prometheus::Labels labels{{"experiment", a.experiment}, {"arm", a.arm}};
    const double values[6] = {double(a.viewers), double(a.responses), double(a.exposures),
                              double(a.clicks),  double(a.hides),     a.running ? 1.0 : 0.0};
    for (size_t i = 0; i < 6; ++i) arm_series_[i]->Add(labels).Set(values[i]);
  }
  guardrail_stops_->Set(double(guardrail_stops));
}

void Metrics::SetStatus(const StatusReport& r) {
  if (r.has_snapshot) {
    snapshot_age_->Set(r.snapshot_age_seconds);
    event_lag_->Set(r.event_lag_seconds);
  }
  const Store::Usage& u = r.store;
  disk_bytes_->Set(double(u.disk_bytes));
  audit_disk_bytes_->Set(double(u.audit_disk_bytes));
  pending_compaction_->Set(double(u.pending_compaction_bytes));
}

void Metrics::ObserveRequest(const std::string& route, int status, double seconds) {
  latency_->Add({{"route", route}}, LatencyBuckets()).Observe(seconds);
  requests_->Add({{"route", route}, {"status", std::to_string(status)}}).Increment();
}

void Metrics::ObserveQuery(const QueryResponse& r) {
  for (int s = 0; s < kNumStages; ++s) stages_[s]->Observe(double(r.stage_micros[s]) * 1e-6);
  for (int s = 0; s < kNumSources; ++s) candidates_[s]->Increment(double(r.candidates_per_source[s]));
  if (r.degraded) degraded_->Increment();
}

std::string Metrics::Render() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

}  // namespace affinity
