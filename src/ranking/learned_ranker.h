// The learned re-ranker: LambdaMART (XGBoost rank:ndcg) over per-(viewer,
// candidate) inputs from the serving path, boosted on top of the blend: the
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
#include "ranking/tree_ensemble.h"

namespace affinity {

// Inputs of one (viewer, candidate) row, in column order.
enum RankInput : int {
  kInBlendFeatures = 0,                          // the blend's normalised features (kNumFeatures)
  kInBlendScore = kInBlendFeatures + kNumFeatures,
  kInSourceScore,                                // raw score per source (kNumSources), 0 if not proposed
  kInSourceRank = kInSourceScore + kNumSources,  // rank within each source's list (kNumSources), 1000 if absent
  kInEmbeddingDot = kInSourceRank + kNumSources, // viewer . candidate factors, for every candidate
  kInCoengSupport,                               // anchors whose co-engagement lists hold it
  kInCoengBest,                                  // strongest single anchor's contribution
  kInCoengRecent,                                // co-engagement from the viewer's 5 newest interactions
  kInCoengBestRecency,                           // how recent the strongest anchor is (0 = newest; 1000: old or none)
  kInNewestCosine,                               // cosine to the factor of the viewer's newest interaction
  kInRecentCosine,                               // cosine to the mean factor of the viewer's 5 newest interactions
  kInRecentCosineMax,                            // highest cosine to any of the viewer's 10 newest interactions
  kInCoengNewest,                                // co-engagement weight with the viewer's newest interaction
  kInCoengNewest3,                               // co-engagement weight with the viewer's 3 newest interactions
  kInCoengRecent20,                              // summed co-engagement weight with the 20 newest (unweighted by recency)
  kInCoengRecent20Support,                       // how many of the 20 newest link to it
  kInCoengNearestRecency,                        // recency of the newest interaction linking to it (1000: none)
  kInBlendRank,                                  // position in the blend's order among the rows (0 = first)
  kInCoengReverse,                               // its own neighbour list: summed weight of the viewer's anchors in it
  kInCoengReverseRecent,                         // ... each anchor's weight shrunk by 0.8 per newer interaction
  kInCoengReverseSupport,                        // ... how many of its neighbours the viewer ever engaged with
  kInSessionNewest,                              // session co-engagement with the viewer's newest interaction
  kInSessionRecent,                              // ... with the 20 newest, each shrunk by 0.8 per newer interaction
  kInSessionSupport,                             // ... how many of the 20 newest link to it
  kInSessionReverse,                             // its own session list: the viewer's anchors in it, shrunk by 0.8 per newer one
  kInSessionReverseSupport,                      // ... how many of its session neighbours the viewer ever engaged with
  kInCommonNeighbours,                           // followed accounts linking to it
  kInCreatorRecent,                              // viewer's recent interactions with its creator
  kInLogEngagers,                                // log(1 + engagers) at the snapshot
  kInLogFollowers,                               // log(1 + followers), live
  kInViewerActivity,                             // log(1 + entities the viewer engaged with)
  kInViewerAnchors,                              // anchors (recent activity + seeds)
  kInViewerFollows,                              // log(1 + accounts the viewer follows)
  kInAgeHours,                                   // since its first engagement (-1: never engaged)
  kInHoursSinceEngaged,                          // since its last engagement (-1: never)
  kInFeaturesFresh,                              // 1 when the snapshot's feature groups are within TTL
  kInNewerThanSnapshot,                          // 1 when the snapshot has no row for it yet
  kNumRankInputs
};

using LearnedRankerOptions = RankerOptions;

class LearnedRanker {
 public:
  static constexpr int kNumInputs = kNumRankInputs;
  static const std::vector<std::string>& InputNames();
  // Fills rows.size() x kNumInputs floats for the scored candidates `rows` of
  // `set`, which come in the blend's order (best first).
  static void Inputs(const SourceContext& ctx, const CandidateSet& set, const std::vector<Scored>& rows, float* out);

  // One row of kNumInputs values (inputs or attributions) as logged in audit
  // records: float32 little-endian, base64. Decode fails on any other length
  // (a row logged by a build with other inputs).
  static std::string EncodeRow(const std::vector<float>& row);
  static bool DecodeRow(std::string_view base64, std::vector<float>* row);

  // rows x kNumInputs inputs, one label per row, group sizes in row order.
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
  // Additive attributions: rows x (kNumInputs + 1); the last column is the bias,
  // which includes the row's base margin. Bias plus contributions = raw score.
  // method "treeshap" (exact) or "saabas" (path attributions, cheaper).
  absl::StatusOr<std::vector<float>> Contributions(const float* inputs, size_t rows,
                                                   const std::string& method = "treeshap") const;
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
  void* booster_;
  TreeEnsemble trees_;
  LearnedRankerOptions options_;
  double margin_scale_;
  std::string version_ = "lambdamart";
};

}  // namespace affinity
