// Training the learned re-ranker from grouped rows (one group per viewer query):
// a seeded share of the groups is held out, the model is trained on the rest and
// both the model and the blend (the base margin alone) are scored by NDCG@k on
// the held-out groups. Used by `affinity batch` (rows from logged impressions)
// and `affinity eval --ranker learned` (rows from a validation slice).
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "ranking/learned_ranker.h"

namespace affinity {

struct RankerRows {
  std::vector<float> x;          // rows x kNumRankInputs
  std::vector<float> y;          // label per row (> 0: relevant)
  std::vector<unsigned> groups;  // rows per group, in row order
  // Relevant items of each group, including those the candidates missed (the
  // ideal DCG counts them, as in the evaluation protocol). 0: count the labels.
  std::vector<unsigned> relevant;

  void AddGroup(const std::vector<float>& x_rows, const std::vector<float>& labels, unsigned relevant_total = 0);
  size_t rows() const { return y.size(); }
};

struct RankerFit {
  std::unique_ptr<LearnedRanker> model;
  size_t train_groups = 0, validation_groups = 0, train_rows = 0;
  double ndcg_model = 0;  // NDCG@k of the model on the held-out groups
  double ndcg_blend = 0;  // NDCG@k of the blend score on the same groups
  double ndcg_current = -1;  // NDCG@k of the `current` model on the same groups (-1: none given)
  // Whether the model reads the streaming groups' inputs (ranker.stream_inputs),
  // and with "auto" the held-out NDCG@k of the fits without and with them (-1: not fitted).
  bool stream_inputs = false;
  double ndcg_without_stream = -1, ndcg_with_stream = -1;
  double seconds = 0;
};

// "used" or "not used", with the held-out NDCG@k of each fit when both ran.
std::string StreamInputsNote(const RankerFit& fit);

// NDCG@k of ranking each group's rows by `scores` (ties: lower row first).
double GroupNdcg(const RankerRows& rows, const std::vector<float>& scores, const std::vector<size_t>& groups, int k);

// `options.stream_inputs`: "off" trains with the streaming groups' inputs
// missing (the trees never split on them), "on" with them, "auto" both ways,
// keeping the fit with the higher NDCG@k on the held-out groups (a tie: off):
// what the deployment's own rows say, not a fixed choice.
absl::StatusOr<RankerFit> FitRanker(const RankerRows& rows, const RankerOptions& options, int k = 20,
                                    double holdout_share = 0.2, const LearnedRanker* current = nullptr);

}  // namespace affinity
