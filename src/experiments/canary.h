// Canary rollout on the serving side. `affinity batch` registers a model that
// passed the offline gate as the registry's canary (with its plan: share,
// minimum sample, guardrails); the controller here turns it into an experiment
// in the "canary" layer (control: the current default; canary: the new model
// on `share` percent of viewers), watches it and records the outcome in the
// registry: promoted (made current, so every server swaps it in) or rolled
// back, with the figures behind the decision. The registry is written first,
// then the experiment is stopped, so a crash between the two is finished by
// the next step.
// Thread safety: Step() runs on the controller's poller thread (or a test's).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "base/config.h"
#include "experiments/experiments_options.h"
#include "base/poller.h"
#include "experiments/experiment_service.h"
#include "models/model_registry.h"

namespace affinity {

// The experiment that runs `version`'s canary per its plan.
Experiment CanaryExperiment(const ModelVersion& version);
inline std::string CanaryExperimentId(const std::string& version) { return "canary-" + version; }

class CanaryController {
 public:
  CanaryController(std::string data_dir, ExperimentService* experiments, const ExperimentsOptions& options);
  ~CanaryController();

  // One look: starts a pending canary, decides a running one, stops the
  // experiments of canaries that ended elsewhere. True when anything changed.
  absl::StatusOr<bool> Step();
  void Start(int poll_ms);
  void Stop();

 private:
  absl::StatusOr<bool> Decide(const ModelVersion& v);
  ModelRegistry registry_;
  ExperimentService* experiments_;
  ExperimentsOptions options_;
  std::unique_ptr<Poller> poller_;
};

}  // namespace affinity
