#include "experiments/experiments_component.h"

namespace affinity {

void ExperimentsComponent::Start() {
  experiments_->Start(poll_ms_);
  if (canary_) canary_->Start(poll_ms_);
}

void ExperimentsComponent::Stop() {
  if (canary_) canary_->Stop();
  experiments_->StopEvaluator();
}

void ExperimentsComponent::WriteStats(JsonWriter& w) const {
  w.Key("experiments").BeginArray();
  for (const auto& a : experiments_->Status()) {
    w.BeginObject().Key("experiment").String(a.experiment).Key("arm").String(a.arm).Key("running").Bool(a.running);
    w.Key("viewers").Int(a.viewers).Key("responses").Int(a.responses).Key("exposures").Int(a.exposures);
    w.Key("clicks").Int(a.clicks).Key("hides").Int(a.hides).EndObject();
  }
  w.EndArray();
  w.Key("experiment_guardrail_stops").Uint(experiments_->guardrail_stops());
  w.Key("experiment_write_errors").Uint(experiments_->write_errors());
}

void ExperimentsComponent::ReportMetrics(MetricsSink& sink) const {
  static constexpr std::string_view kSeries[6][2] = {
      {"affinity_experiment_viewers", "Viewers assigned to the arm"},
      {"affinity_experiment_responses", "Responses served in the arm"},
      {"affinity_experiment_exposures", "Results served in the arm"},
      {"affinity_experiment_clicks", "Clicks attributed to the arm"},
      {"affinity_experiment_hides", "Hides attributed to the arm"},
      {"affinity_experiment_arm_running", "1 while the arm serves, 0 once stopped"}};
  for (const auto& a : experiments_->Status()) {
    const MetricsSink::Labels labels{{"experiment", a.experiment}, {"arm", a.arm}};
    const double values[6] = {double(a.viewers), double(a.responses), double(a.exposures),
                              double(a.clicks),  double(a.hides),     a.running ? 1.0 : 0.0};
    for (size_t i = 0; i < 6; ++i) sink.Gauge(kSeries[i][0], kSeries[i][1], labels, values[i]);
  }
  sink.Gauge("affinity_experiment_guardrail_stops", "Arms stopped by a guardrail since the server started",
             double(experiments_->guardrail_stops()));
}

}  // namespace affinity
