#include "ranking/tree_ensemble.h"

#include <simdjson.h>

#include <cmath>
#include <string>

namespace affinity {
namespace {

absl::Status Bad(const std::string& what) { return absl::DataLossError("tree model: " + what); }

template <typename T>
absl::Status ReadArray(simdjson::dom::object tree, const char* key, std::vector<T>* out) {
  simdjson::dom::array a;
  if (tree[key].get(a)) return Bad(std::string("a tree lacks ") + key);
  out->clear();
  for (auto v : a) {
    if constexpr (std::is_floating_point_v<T>) {
      double d;
      if (v.get(d)) return Bad(std::string(key) + " must hold numbers");
      out->push_back(T(d));
    } else {
      int64_t i;
      if (v.get(i)) return Bad(std::string(key) + " must hold integers");
      out->push_back(T(i));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TreeEnsemble> TreeEnsemble::Parse(std::string_view json, int num_features) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json.data(), json.size()).get(doc)) return Bad("not valid JSON");
  simdjson::dom::object learner, booster, model;
  if (doc["learner"].get(learner) || learner["gradient_booster"].get(booster) || booster["model"].get(model))
    return Bad("no learner.gradient_booster.model");
  std::string_view name;
  if (booster["name"].get(name) || name != "gbtree") return Bad("only gbtree boosters are supported");
  std::string_view base;
  if (learner["learner_model_param"]["base_score"].get(base)) return Bad("no base_score");
  TreeEnsemble e;
  e.num_features_ = num_features;
  e.thresholds_.resize(size_t(num_features));
  try {
    e.base_score_ = std::stof(std::string(base));
  } catch (...) {
    return Bad("base_score is not a number");
  }
  simdjson::dom::array trees;
  if (model["trees"].get(trees)) return Bad("no trees");
  std::vector<int32_t> left, right, split_type;
  std::vector<int64_t> feature;
  std::vector<float> cond, hess;
  std::vector<int32_t> default_left;
  for (auto t : trees) {
    simdjson::dom::object tree;
    if (t.get(tree)) return Bad("a tree is not an object");
    for (auto st : {ReadArray(tree, "left_children", &left), ReadArray(tree, "right_children", &right),
                    ReadArray(tree, "split_indices", &feature), ReadArray(tree, "split_conditions", &cond),
                    ReadArray(tree, "sum_hessian", &hess), ReadArray(tree, "default_left", &default_left),
                    ReadArray(tree, "split_type", &split_type)})
      if (!st.ok()) return st;
    const size_t n = left.size();
    if (n == 0 || right.size() != n || feature.size() != n || cond.size() != n || hess.size() != n ||
        default_left.size() != n || (!split_type.empty() && split_type.size() != n))
      return Bad("a tree's node arrays differ in length");
    const uint32_t root = uint32_t(e.nodes_.size());
    e.roots_.push_back(root);
    for (size_t i = 0; i < n; ++i) {
      const bool leaf = left[i] < 0;
      if (!leaf) {
        if (left[i] >= int32_t(n) || right[i] < 0 || right[i] >= int32_t(n) || left[i] <= int32_t(i) ||
            right[i] <= int32_t(i))
          return Bad("a tree's children are out of order");
        if (feature[i] < 0 || feature[i] >= num_features) return Bad("a split uses an unknown input");
        if (!split_type.empty() && split_type[i] != 0) return Bad("categorical splits are not supported");
        e.thresholds_[size_t(feature[i])].push_back(cond[i]);
      }
      e.nodes_.push_back({leaf ? -1 : int32_t(root) + left[i], leaf ? -1 : int32_t(root) + right[i],
                          leaf ? 0u : uint32_t(feature[i]), cond[i], cond[i], default_left[i] != 0});
    }
    // Cover-weighted means, children before parents (children have higher ids).
    for (size_t i = n; i-- > 0;) {
      Node& node = e.nodes_[root + i];
      if (node.left < 0) continue;
      const Node& l = e.nodes_[size_t(node.left)];
      const Node& r = e.nodes_[size_t(node.right)];
      const float hl = hess[size_t(node.left) - root], hr = hess[size_t(node.right) - root];
      node.mean = hess[i] > 0 ? (l.mean * hl + r.mean * hr) / hess[i] : 0.f;
    }
  }
  return e;
}

inline int32_t TreeEnsemble::Next(const Node& n, const float* x) const {
  const float v = x[n.feature];
  if (std::isnan(v)) return n.default_left ? n.left : n.right;
  return v < n.value ? n.left : n.right;
}

float TreeEnsemble::Predict(const float* x, float margin) const {
  float sum = 0;
  for (uint32_t root : roots_) {
    int32_t id = int32_t(root);
    while (nodes_[size_t(id)].left >= 0) id = Next(nodes_[size_t(id)], x);
    sum += nodes_[size_t(id)].value;
  }
  return margin + sum;
}

void TreeEnsemble::Attribute(const float* x, float margin, float* out) const {
  for (int f = 0; f <= num_features_; ++f) out[f] = 0;
  out[num_features_] = margin;
  for (uint32_t root : roots_) {
    int32_t id = int32_t(root);
    float value = nodes_[size_t(id)].mean;
    out[num_features_] += value;
    while (nodes_[size_t(id)].left >= 0) {
      const Node& n = nodes_[size_t(id)];
      id = Next(n, x);
      const float next = nodes_[size_t(id)].mean;
      out[n.feature] += next - value;
      value = next;
    }
  }
}

}  // namespace affinity
