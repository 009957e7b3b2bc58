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

#include <map>
#include <mutex>
#include <string_view>

#include "base/component.h"
#include "candidates/candidate_set.h"
#include "query/query.h"

namespace affinity {

// The request path's series are its own; the components' gauges arrive
// through MetricsSink at each scrape (base/component.h).
class Metrics : public MetricsSink {
 public:
  Metrics();
  void ObserveRequest(const std::string& route, int status, double seconds);
  void ObserveQuery(const QueryResponse& r);
  void AddEvents(size_t n) { events_->Increment(double(n)); }
  // A write answered from its Idempotency-Key's record instead of applied again.
  void AddIdempotentReplay(const std::string& route) { replays_->Add({{"route", route}}).Increment(); }
  // From a feedback batch's arrival to its events being durable and applied
  // to the live state (what the next query reads).
  void ObserveEventVisible(double seconds) { event_visible_->Observe(seconds); }
  // A component's gauge (families made on first use, kept by name).
  using MetricsSink::Gauge;
  void Gauge(std::string_view name, std::string_view help, const Labels& labels, double value) override;
  std::string Render() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Histogram>* latency_;
  prometheus::Family<prometheus::Counter>* requests_;
  std::array<prometheus::Histogram*, kNumStages> stages_{};
  std::array<prometheus::Counter*, kNumSources> candidates_{};
  prometheus::Counter* degraded_;
  prometheus::Counter* events_;
  prometheus::Family<prometheus::Counter>* replays_;  // by route
  prometheus::Histogram* event_visible_;
  std::mutex gauges_mu_;
  std::map<std::string, prometheus::Family<prometheus::Gauge>*, std::less<>> gauges_;  // guarded by gauges_mu_
};

}  // namespace affinity
