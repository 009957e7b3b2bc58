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
  event_visible_ = &prometheus::BuildHistogram()
                        .Name("affinity_event_visible_seconds")
                        .Help("From a feedback batch's arrival to its events being durable and visible to queries")
                        .Register(*registry_)
                        .Add({}, LatencyBuckets());
}

void Metrics::Gauge(std::string_view name, std::string_view help, const Labels& labels, double value) {
  prometheus::Labels l;
  for (const auto& [k, v] : labels) l.emplace(k, v);
  std::lock_guard<std::mutex> lock(gauges_mu_);
  auto it = gauges_.find(name);
  if (it == gauges_.end())
    it = gauges_
             .emplace(std::string(name), &prometheus::BuildGauge()
                                              .Name(std::string(name))
                                              .Help(std::string(help))
                                              .Register(*registry_))
             .first;
  it->second->Add(l).Set(value);
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
