// Training the learned re-ranker from grouped rows (one group per viewer query):
// a seeded share of the groups is held out, the model is trained on the rest and
// both the model and the blend (the base margin alone) are scored by NDCG@k on
// the held-out groups. Used by `affinity batch` (rows from logged impressions)
// and `affinity eval --ranker learned` (rows from a validation slice).
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "ranking/learned_ranker.h"
#include "ranking/ranker_options.h"

namespace affinity {

// Which groups are held out: a salted hash of each group's key (a logged
// response's request id) below `share`. A group stays on its side of the split
// however many groups are added or dropped around it, so a later training run
// with the same rule holds out again every group an earlier one held out: a
// model trained by the earlier run never saw them.
struct HoldoutRule {
  static constexpr uint64_t kDefaultSeed = 0x5eed0000a1f1a17eull;
  double share = 0.2;
  uint64_t seed = kDefaultSeed;
  bool HeldOut(uint64_t key) const;
  bool operator==(const HoldoutRule&) const = default;
};
// The key of a group named by a string (FNV-1a 64).
uint64_t GroupKey(std::string_view name);

struct RankerRows {
  std::vector<float> x;          // rows x kNumRankInputs
  std::vector<float> y;          // label per row (> 0: relevant)
  std::vector<unsigned> groups;  // rows per group, in row order
  // Relevant items of each group, including those the candidates missed (the
  // ideal DCG counts them, as in the evaluation protocol). 0: count the labels.
  std::vector<unsigned> relevant;
  std::vector<uint64_t> keys;    // per group: what the split hashes (default: its index)
  // The drift reference's rows (optional): the inputs of the blend's best rows
  // of logged responses, served or not (LoggedResponse::head), each with its
  // response's key; those of held-out responses make the reference.
  std::vector<float> head_x;
  std::vector<uint64_t> head_keys;

  void AddGroup(const std::vector<float>& x_rows, const std::vector<float>& labels, unsigned relevant_total = 0);
  void AddGroup(const std::vector<float>& x_rows, const std::vector<float>& labels, unsigned relevant_total,
                uint64_t key);
  void AddHead(const std::vector<std::vector<float>>& head_rows, uint64_t key);
  size_t rows() const { return y.size(); }
};

// The model serving now, to be compared with a new one: only on held-out
// groups it never trained on (`unseen`, per group of the rows; empty: every
// group is unseen by it, e.g. a model trained on other data).
struct CurrentModel {
  const LearnedRanker* model = nullptr;
  std::vector<char> unseen;
};

struct RankerFit {
  std::unique_ptr<LearnedRanker> model;
  size_t train_groups = 0, validation_groups = 0, train_rows = 0;
  double ndcg_model = 0;  // NDCG@k of the model on the held-out groups
  double ndcg_blend = 0;  // NDCG@k of the blend score on the same groups
  // The compared groups: held-out groups the current model never trained on.
  // ndcg_current is its NDCG@k on them, ndcg_compared the new model's (-1: no
  // current model, or no such group).
  double ndcg_current = -1, ndcg_compared = -1;
  size_t compared_groups = 0;
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

// `options.stream_inputs`: kOff trains with the streaming groups' inputs
// missing (the trees never split on them), kOn with them, kAuto both ways,
// keeping the fit with the higher NDCG@k on the held-out groups (a tie: off):
// what the deployment's own rows say, not a fixed choice.
// The model's drift reference (ranking/drift.h) is what its monitor will see:
// serving feeds it the model's scores of the blend's best
// DriftMonitor::kTopRows candidates, so the reference holds its scores of
// those rows of the held-out responses (`head_x`); rows without them (records
// of older builds, evaluation slices) fall back to the held-out rows the blend
// placed there (their blend_rank input), which the constraints thin out.
absl::StatusOr<RankerFit> FitRanker(const RankerRows& rows, const RankerOptions& options, int k = 20,
                                    const HoldoutRule& holdout = {}, const CurrentModel& current = {});

}  // namespace affinity
