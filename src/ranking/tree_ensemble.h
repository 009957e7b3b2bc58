// A boosted tree ensemble read from XGBoost's JSON model, evaluated here: raw
// scores and path (Saabas) attributions for a request's rows without building a
// DMatrix or entering the library per call. The learned ranker uses it for
// serving and checks it against XGBoost's own predictions when a model is made
// or loaded; exact TreeSHAP stays with XGBoost.
// Immutable after Parse: safe for concurrent use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace affinity {

class TreeEnsemble {
 public:
  // `json` is XGBoost's JSON model (gbtree, numerical splits only) with
  // `num_features` inputs.
  static absl::StatusOr<TreeEnsemble> Parse(std::string_view json, int num_features);

  int num_features() const { return num_features_; }
  size_t num_trees() const { return roots_.size(); }
  // The score added when no base margin is given.
  float base_score() const { return base_score_; }
  // Every split threshold per input (for checks that probe both sides of them).
  const std::vector<std::vector<float>>& Thresholds() const { return thresholds_; }

  // Raw score of one row: margin plus the leaf value of every tree.
  float Predict(const float* x, float margin) const;
  // Path attributions of one row into out[0..num_features] (the last is the
  // bias, margin included); they add up to Predict(x, margin).
  void Attribute(const float* x, float margin, float* out) const;

 private:
  struct Node {
    int32_t left;   // -1 at a leaf
    int32_t right;
    uint32_t feature;
    float value;    // split threshold, or the leaf value at a leaf
    float mean;     // cover-weighted mean of the leaves below (the leaf value at a leaf)
    bool default_left;
  };
  int32_t Next(const Node& n, const float* x) const;
  std::vector<Node> nodes_;      // every tree's nodes, tree after tree
  std::vector<uint32_t> roots_;  // offset of each tree's root in nodes_
  std::vector<std::vector<float>> thresholds_;
  int num_features_ = 0;
  float base_score_ = 0;
};

}  // namespace affinity
