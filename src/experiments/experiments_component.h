// Experiments as one component of a serving process (base/component.h): the
// guardrail evaluator and the canary controller started and stopped together,
// the per-arm members of /admin/stats ("experiments",
// "experiment_guardrail_stops", "experiment_write_errors") and the
// affinity_experiment_* gauges. The /admin/experiments routes are api's
// (api/experiment_routes.cc): their bodies go through the API's JSON checks.
// Thread safety: as ExperimentService.
#pragma once

#include "base/component.h"
#include "experiments/canary.h"
#include "experiments/experiment_service.h"

namespace affinity {

class ExperimentsComponent : public Component {
 public:
  // `canary` may be null (no canary rollout).
  ExperimentsComponent(ExperimentService* experiments, CanaryController* canary, int poll_ms)
      : experiments_(experiments), canary_(canary), poll_ms_(poll_ms) {}

  std::string_view name() const override { return "experiments"; }
  void Start() override;
  void Stop() override;
  void WriteStats(JsonWriter& w) const override;
  void ReportMetrics(MetricsSink& sink) const override;

 private:
  ExperimentService* experiments_;
  CanaryController* canary_;
  int poll_ms_;
};

}  // namespace affinity
