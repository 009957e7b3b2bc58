// Drift of every learned ranker a server serves (the default model and each
// experiment arm's): GET /admin/drift, the drift gauges of /metrics and a
// periodic evaluation that logs each model's move into and out of breach.
// Thread safety: safe for concurrent use.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/component.h"
#include "base/config.h"
#include "base/poller.h"
#include "ranking/drift.h"
#include "ranking/learned_ranker.h"
#include "models/drift_options.h"

namespace affinity {

// A component (base/component.h): GET /admin/drift, the affinity_drift_*
// gauges, and its own poller (every drift.poll_ms) logging breaches.
class DriftService : public Component {
 public:
  using Models = std::function<std::vector<std::shared_ptr<const LearnedRanker>>()>;
  DriftService(Models models, const DriftOptions& options);

  struct ModelDrift {
    std::string model;
    bool has_reference = false;
    DriftReport report;
  };
  std::vector<ModelDrift> Evaluate() const;
  std::string Json() const;
  // One evaluation; logs models that entered or left breach. True when one did.
  absl::StatusOr<bool> Watch();

  std::string_view name() const override { return "drift"; }
  void Start() override { watch_.Start(); }
  void Stop() override { watch_.Stop(); }
  void ReportMetrics(MetricsSink& sink) const override;
  std::vector<AdminRoute> Routes() override;

 private:
  Models models_;
  DriftThresholds thresholds_;
  mutable std::mutex mu_;
  std::map<std::string, bool> breached_;  // guarded by mu_
  Poller watch_;
};

}  // namespace affinity
