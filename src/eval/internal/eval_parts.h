// Offline evaluation's steps (eval/evaluator.cc runs them): the data and its
// split, the ranker trained on a validation slice, the world built as import
// and batch build it, and the metrics over the ranked lists. Internal to eval/.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "absl/status/statusor.h"
#include "data/importers.h"
#include "eval/evaluator.h"
#include "features/snapshot.h"
#include "ranking/learned_ranker.h"
#include "state/live_state.h"
#include "state/registry.h"
#include "store/store.h"

namespace affinity::eval_internal {

using Clock_ = std::chrono::steady_clock;
inline double Since(Clock_::time_point t) { return std::chrono::duration<double>(Clock_::now() - t).count(); }

struct TestSet {
  std::vector<std::string> users;                  // external ids, file order
  std::vector<std::vector<std::string>> items;     // external ids
};

// Step 1 (splits.cc): parses the training data and holds out the test set the
// options ask for; `target` is the kind ranked, `strip_prefix` whether the
// dataset's ids carry a one-letter prefix added at parsing.
absl::Status LoadEvalData(const EvalOptions& o, int64_t now, ParsedDataset* d, TestSet* test, Kind* target,
                          bool* strip_prefix);

// Holds out a share of each user's training interactions: by default the latest
// `share` of each line (LightGCN lines list a user's interactions in time order,
// and the test items lean towards the end of the line, docs/evaluation.md, so a
// time-like slice is what tuning needs); with latest = false a seeded random one.
absl::Status SplitValidation(ParsedDataset* d, double share, TestSet* test, bool latest = true,
                             uint64_t seed = 0x7a1d5eedull); 
// A scratch data dir removed on destruction unless the caller named it.
class Scratch {
 public:
  explicit Scratch(const std::string& dir);
  ~Scratch();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool owned_ = false;
};

struct EvalWorld {
  std::unique_ptr<Store> store;
  std::unique_ptr<EntityRegistry> registry;
  std::unique_ptr<LiveState> live;
  std::shared_ptr<Snapshot> snapshot;
};

// Step 3 (evaluator.cc): imports `d` into a store at `dir` and builds its
// snapshot, as `affinity import` and `affinity batch` do.
absl::StatusOr<std::unique_ptr<EvalWorld>> BuildWorld(const ParsedDataset& d, const std::string& dir,
                                                      const EvalOptions& o, int64_t now, const EvalProgress& progress);

// Step 2 (eval_ranker.cc): with --ranker learned, the saved model or LambdaMART
// trained on validation slices carved from the training data (never the test),
// with inputs from the serving path; null with --ranker off.
absl::StatusOr<std::shared_ptr<const LearnedRanker>> TrainEvalRanker(const EvalOptions& o, const ParsedDataset& d,
                                                                     Kind target, int64_t now,
                                                                     const EvalProgress& progress, EvalResult* result);

// What the metrics read (step 5).
struct RankedLists {
  const EvalOptions& o;
  const EntityRegistry& registry;
  const LiveState& live;
  const Snapshot* snap;
  Kind target;
  const TestSet& test;
  const std::vector<std::vector<uint32_t>>& ranked;       // per test user, dense ids, best first
  const std::vector<std::unordered_set<uint32_t>>& truth;  // per test user
};

// Step 5 (eval_metrics.cc): quality at k and along the curve, popularity bias,
// exposure fairness over entities and creators, viewer cohorts and activity.
void FillMetrics(const RankedLists& lists, EvalResult* result);

}  // namespace affinity::eval_internal
