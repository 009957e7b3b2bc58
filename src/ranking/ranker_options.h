// [ranker]: the learned re-ranker's training, gate and rollout (its owners:
// ranking/ranker_training.h, models/ and experiments/canary.h).
#pragma once

#include <cstdint>
#include <string>
#include "absl/status/status.h"
#include "base/settings.h"
#include "base/enum_names.h"

namespace affinity {

// How `affinity batch` ships a model that passes the gate (ranker.rollout): a
// canary experiment decides, or it is promoted at once.
enum class RolloutMode { kCanary, kDirect };
inline constexpr EnumNames<RolloutMode, 2> kRolloutModeNames{
    {{{RolloutMode::kCanary, "canary"}, {RolloutMode::kDirect, "direct"}}}};
inline std::string_view RolloutModeName(RolloutMode m) { return kRolloutModeNames.Name(m); }

// The streaming groups' inputs in training (ranker.stream_inputs): kAuto trains
// with and without them and keeps the better on held-out groups; kOn; kOff
// (never split on).
enum class StreamInputs { kAuto, kOn, kOff };
inline constexpr EnumNames<StreamInputs, 3> kStreamInputsNames{
    {{{StreamInputs::kAuto, "auto"}, {StreamInputs::kOn, "on"}, {StreamInputs::kOff, "off"}}}};
inline std::string_view StreamInputsName(StreamInputs s) { return kStreamInputsNames.Name(s); }

// The learned re-ranker (LambdaMART through XGBoost) and its training.
struct RankerOptions {
  int rounds = 100;                 // boosting rounds (trees)
  int max_depth = 4;
  double eta = 0.1;
  int pair_samples = 8;             // pairs sampled per positive per round
  double margin_scale = 0.5;        // base margin = margin_scale x blend score (0: trees only)
  double min_child_weight = 1.0;
  double subsample = 1.0;
  double colsample_bynode = 1.0;   // share of the inputs each split may choose from
  bool monotone = false;            // the score never falls as a candidate gets closer to the viewer's newest
                                    // interactions or to the blend's top (XGBoost monotone constraints)
  std::string objective = "rank:ndcg";
  int threads = 0;                  // training threads; 0 = number of cores
  int max_groups = 30000;           // viewers (query groups) sampled for training
  double validation_share = 0.1;    // eval: share of each user's training items held out to train on
  int training_slices = 1;          // eval: consecutive such shares, each labelled in its own world
  int random_slices = 0;            // eval: extra slices holding out a seeded random share of each line
  double random_slice_groups = 0.6; // eval: a random slice samples this share of max_groups
  double gate_tolerance = 0.002;    // promotion refused when validation NDCG drops by more than this
  int label_window_hours = 24;      // batch: an outcome within this long after an impression is a positive
  bool train_in_batch = true;       // batch: train a model from logged impressions and outcomes
  bool auto_promote = true;         // batch: ship the new model when it passes the gate (as `rollout` says)
  RolloutMode rollout = RolloutMode::kCanary;  // batch: how a model that passes the gate ships
  double canary_share = 10;         // percent of viewers the canary model serves
  int canary_min_viewers = 1500;    // canary viewers before the decision (80 % power for a 10 % CTR drop)
  double canary_max_increase = 0.2; // canary guardrails: hide and error rate may rise this much (relative)
  double canary_max_latency_increase = 0.5;  // and p99 latency this much
  int min_groups = 30;              // batch: fewer labelled requests than this: no training
  StreamInputs stream_inputs = StreamInputs::kAuto;  // the streaming groups' inputs in training

  static constexpr const char* kSection = "ranker";
  // Its settings, for the configuration reader (base/settings.h).
  template <class Read>
  void Fields(Read& read) {
    read("ranker", "rounds", rounds);
    read("ranker", "max_depth", max_depth);
    read("ranker", "eta", eta);
    read("ranker", "pair_samples", pair_samples);
    read("ranker", "margin_scale", margin_scale);
    read("ranker", "min_child_weight", min_child_weight);
    read("ranker", "subsample", subsample);
    read("ranker", "colsample_bynode", colsample_bynode);
    read("ranker", "objective", objective);
    read("ranker", "threads", threads);
    read("ranker", "max_groups", max_groups);
    read("ranker", "validation_share", validation_share);
    read("ranker", "training_slices", training_slices);
    read("ranker", "random_slices", random_slices);
    read("ranker", "monotone", monotone);
    read("ranker", "random_slice_groups", random_slice_groups);
    read("ranker", "gate_tolerance", gate_tolerance);
    read("ranker", "label_window_hours", label_window_hours);
    read("ranker", "train_in_batch", train_in_batch);
    read("ranker", "auto_promote", auto_promote);
    read("ranker", "rollout", rollout, kRolloutModeNames);
    read("ranker", "canary_share", canary_share);
    read("ranker", "canary_min_viewers", canary_min_viewers);
    read("ranker", "canary_max_increase", canary_max_increase);
    read("ranker", "canary_max_latency_increase", canary_max_latency_increase);
    read("ranker", "min_groups", min_groups);
    read("ranker", "stream_inputs", stream_inputs, kStreamInputsNames);
  }
  absl::Status Validate() const {
    auto bad = SettingError;
    if (rounds < 1 || rounds > 5000) return bad("ranker.rounds must be 1..5000");
    if (max_depth < 1 || max_depth > 16) return bad("ranker.max_depth must be 1..16");
    if (eta <= 0 || eta > 1) return bad("ranker.eta must be in (0, 1]");
    if (objective != "rank:ndcg" && objective != "rank:pairwise" && objective != "rank:map")
      return bad("ranker.objective must be rank:ndcg, rank:pairwise or rank:map");
    if (validation_share <= 0 || validation_share >= 1) return bad("ranker.validation_share must be in (0, 1)");
    if (training_slices < 1 || training_slices * validation_share >= 0.8)
      return bad("ranker.training_slices must be >= 1 and leave at least a fifth of each line to the oldest slice's world");
    if (random_slices < 0 || random_slices > 4) return bad("ranker.random_slices must be 0..4");
    if (!(random_slice_groups > 0 && random_slice_groups <= 1))
      return bad("ranker.random_slice_groups must be in (0, 1]");
    if (gate_tolerance < 0) return bad("ranker.gate_tolerance must be >= 0");
    if (!(canary_share > 0 && canary_share < 100)) return bad("ranker.canary_share must be in (0, 100)");
    if (canary_min_viewers < 1) return bad("ranker.canary_min_viewers must be >= 1");
    if (!(canary_max_increase > 0)) return bad("ranker.canary_max_increase must be > 0");
    if (!(canary_max_latency_increase > 0)) return bad("ranker.canary_max_latency_increase must be > 0");
    if (subsample <= 0 || subsample > 1) return bad("ranker.subsample must be in (0, 1]");
    if (colsample_bynode <= 0 || colsample_bynode > 1) return bad("ranker.colsample_bynode must be in (0, 1]");
    return absl::OkStatus();
  }
};

}  // namespace affinity
