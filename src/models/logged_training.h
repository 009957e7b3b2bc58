// Training the learned re-ranker inside `affinity batch` from what production
// logged: every served response's audit record keeps each result's ranker
// inputs as they were at serving time, and feedback events name the response
// they answer in `context.request_id`. A labelled group is one such response:
// its results are the rows (inputs exactly as served — point-in-time, no
// leakage), a result is relevant when the viewer engaged with it positively
// within `ranker.label_window_hours` of the response. The model is registered;
// with `ranker.auto_promote`, one that passes the offline gate starts as a
// canary (ranker.rollout = "canary": a server runs it as an experiment and
// promotes or rolls it back) or is promoted at once ("direct").
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "base/config.h"
#include "state/registry.h"
#include "store/store.h"
#include "ranking/ranker_options.h"

namespace affinity {

struct LoggedTrainingReport {
  bool trained = false;
  std::string note;          // why nothing was trained, or the gate's refusal
  std::string version;       // the registered version
  bool promoted = false;     // made current at once (ranker.rollout = "direct")
  bool canary = false;       // passed the gate and waits for its canary (ranker.rollout = "canary")
  size_t groups = 0, rows = 0;
  double ndcg = 0, blend_ndcg = 0, current_ndcg = -1;
  // The held-out groups the current model never trained on, and the new
  // model's NDCG on them (-1: none); current_ndcg is the current model's there.
  double compared_ndcg = -1;
  size_t compared_groups = 0;
  std::string stream_inputs;  // whether the model reads the streaming groups, and why
  double seconds = 0;
};

// Trains with `ranker`'s settings on `threads` threads (0: two).
absl::StatusOr<LoggedTrainingReport> TrainFromLoggedImpressions(const std::string& data_dir, const Store& store,
                                                                const EntityRegistry& registry,
                                                                const RankerOptions& ranker, int threads);

}  // namespace affinity
