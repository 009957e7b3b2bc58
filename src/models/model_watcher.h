// Serving side of the model registry: polls registry.json and installs the
// current model when it changes. Loading happens on the poller thread; queries
// keep using the previous model until the swap. A model whose files fail their
// checksum is refused, never served: the model it had keeps serving, or, at
// start, the newest previously current version that verifies (the blend when
// none does). What was refused, why and what serves instead is refused().
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/clock.h"
#include "base/component.h"
#include "base/poller.h"
#include "base/refused_file.h"
#include "models/model_registry.h"
#include "ranking/learned_ranker.h"

namespace affinity {

// A component (base/component.h): the refused models in /readyz,
// /admin/stats and affinity_refused_files{kind="model"}; GET /admin/models.
class ModelWatcher : public Component {
 public:
  using Install = std::function<void(std::shared_ptr<const LearnedRanker>)>;
  // `clock` stamps the refusals (and dates what the registry records).
  ModelWatcher(std::string data_dir, int poll_ms, Install install, const Clock* clock = SystemClock::Default());
  ~ModelWatcher() override;
  // Loads the current model now if it changed (or was refused, to see whether
  // it verifies now); true when a swap happened. An error when the registry's
  // current model is refused (the previous one stays).
  absl::StatusOr<bool> Refresh();
  void Start() override;
  void Stop() override;
  // The version serving now ("" for the blend).
  std::string current() const;
  // The registry as it is on disk now (versions, current, canary, history).
  absl::StatusOr<RegistryState> Registry() const;
  // Why the last look failed ("" once a later look succeeds).
  std::string last_error() const { return poller_.last_error(); }
  // The model files refused now: the registry's current version (and, at
  // start, the fallbacks that failed too), then experiment arms' models.
  std::vector<RefusedFile> refused() const;
  // An experiment arm's model refused at load (it serves the default model).
  void NoteArmRefusal(const std::string& version, const std::string& reason);

  std::string_view name() const override { return "models"; }
  void ReportMetrics(MetricsSink& sink) const override;
  void ReportHealth(Health& health) const override;
  std::vector<AdminRoute> Routes() override;

 private:
  absl::StatusOr<bool> Load();
  // At start: the newest previously current version (history, newest first)
  // that verifies; failures are added to `refused`. Null: the blend.
  std::shared_ptr<const LearnedRanker> Fallback(const RegistryState& st, std::vector<RefusedFile>* refused,
                                                std::string* serving);
  const Clock* clock_;
  ModelRegistry registry_;
  Install install_;
  mutable std::mutex mu_;
  std::string current_;  // serving; guarded by mu_
  std::string wanted_;   // the registry's current at the last look; guarded by mu_
  bool looked_ = false;  // a look has completed (the start is over); guarded by mu_
  std::vector<RefusedFile> refused_;                 // guarded by mu_
  std::map<std::string, RefusedFile> arm_refused_;   // guarded by mu_
  Poller poller_;
};

}  // namespace affinity
