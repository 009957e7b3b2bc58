// The learned re-ranker: LambdaMART (XGBoost rank:ndcg) over per-(viewer,
// candidate) inputs from the serving path (ranking/ranker_inputs.h), boosted on top of the blend: the
// blend's score (times `margin_scale`) is each row's base margin, so the trees
// learn corrections to the transparent ranker rather than a ranking from scratch.
// This is the one adapter around XGBoost's C API (which returns -1 and leaves
// its message in XGBGetLastError): errors are Status values here.
// Scores and path attributions come from the trees read back into a
// TreeEnsemble (checked against XGBoost's predictions when the model is made or
// loaded); exact TreeSHAP goes through XGBoost.
// Thread safety: Predict and Contributions are safe for concurrent use (XGBoost
// prediction is thread-safe, the TreeEnsemble immutable); Train and Load are
// factories.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "base/config.h"
#include "candidates/candidate_set.h"
#include "candidates/sources.h"
#include "ranking/blend.h"
#include "ranking/drift.h"
#include "ranking/ranker_inputs.h"
#include "ranking/tree_ensemble.h"
#include "ranking/ranker_options.h"

namespace affinity {

using LearnedRankerOptions = RankerOptions;

class LearnedRanker {
 public:
  // rows x kNumRankInputs inputs, one label per row, group sizes in row order.
  static absl::StatusOr<std::unique_ptr<LearnedRanker>> Train(const std::vector<float>& inputs,
                                                              const std::vector<float>& labels,
                                                              const std::vector<unsigned>& groups,
                                                              const LearnedRankerOptions& options);
  // A model saved by Save (model.json + ranker.json in `dir`).
  static absl::StatusOr<std::unique_ptr<LearnedRanker>> Load(const std::string& dir);
  absl::Status Save(const std::string& dir) const;
  ~LearnedRanker();

  // Raw scores (base margin included).
  absl::StatusOr<std::vector<float>> Predict(const float* inputs, size_t rows) const;
  // Additive attributions: rows x (kNumRankInputs + 1); the last column is the bias,
  // which includes the row's base margin. Bias plus contributions = raw score.
  // TreeSHAP (exact) or Saabas (path attributions, cheaper).
  absl::StatusOr<std::vector<float>> Contributions(const float* inputs, size_t rows,
                                                   AttributionMethod method = AttributionMethod::kTreeShap) const;
  // The booster as XGBoost's JSON model (what the native evaluator reads).
  absl::StatusOr<std::string> ModelJson() const;
  // Makes the trees of `model_json` the ones this ranker evaluates natively,
  // once they score and path-attribute rows that straddle their thresholds
  // exactly as the booster does; otherwise refuses (DataLossError) and keeps the
  // trees it had. Load and Train pass the booster's own JSON.
  absl::Status UseTrees(std::string_view model_json);
  std::string version() const { return version_; }
  void set_version(std::string v) { version_ = std::move(v); }
  double margin_scale() const { return margin_scale_; }
  const LearnedRankerOptions& options() const { return options_; }
  // How many of the inputs (RankerInputNames(), in column order) the model
  // reads: all of them for a model of this build; fewer for one trained before
  // inputs were appended, which still serves (it reads the columns it knew;
  // its attributions of the newer inputs are 0).
  int width() const { return width_; }
  // Drift (ranking/drift.h): the training reference saved with the model
  // (reference.json) and the monitor of what this model ranks at serving;
  // null for a model saved without one.
  void SetDriftReference(DriftReference reference) { drift_ = std::make_shared<DriftMonitor>(std::move(reference)); }
  DriftMonitor* drift() const { return drift_.get(); }

 private:
  LearnedRanker(void* booster, const LearnedRankerOptions& o)
      : booster_(booster), options_(o), margin_scale_(o.margin_scale) {}
  absl::StatusOr<std::vector<float>> Run(const float* inputs, size_t rows, int type) const;
  // Reads the booster's trees into trees_ and checks them against XGBoost.
  absl::Status ReadTrees();
  float Margin(const float* row) const { return Margin(row, trees_); }
  float Margin(const float* row, const TreeEnsemble& trees) const {
    return margin_scale_ != 0 ? float(margin_scale_) * row[kInBlendScore] : trees.base_score();
  }
  // Rows of kNumRankInputs as the model's XGBoost matrix (its width_ columns).
  std::vector<float> ModelColumns(const float* inputs, size_t rows) const;
  // Attributions of width_ + 1 columns per row spread to kNumRankInputs + 1.
  std::vector<float> ToFullWidth(const float* contrib, size_t rows) const;
  void* booster_;
  int width_ = kNumRankInputs;
  TreeEnsemble trees_;
  LearnedRankerOptions options_;
  double margin_scale_;
  std::string version_ = "lambdamart";
  std::shared_ptr<DriftMonitor> drift_;
};

}  // namespace affinity
