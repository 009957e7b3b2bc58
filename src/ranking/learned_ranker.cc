#include "ranking/learned_ranker.h"

#include <xgboost/c_api.h>

#include <cmath>

#include "base/status.h"

namespace affinity {
namespace {

absl::Status XgbError(const char* what) {
  return absl::InternalError(std::string("xgboost ") + what + ": " + XGBGetLastError());
}

// Owns a DMatrix handle.
struct DMatrix {
  DMatrixHandle h = nullptr;
  ~DMatrix() {
    if (h) XGDMatrixFree(h);
  }
};

}  // namespace

const std::vector<std::string>& LearnedRanker::InputNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (int f = 0; f < kNumFeatures; ++f) n.push_back(FeatureName(Feature(f)));
    n.push_back("blend_score");
    n.push_back("log_engagers");
    n.push_back("log_viewer_activity");
    for (int s = 0; s < kNumSources; ++s) n.push_back(std::string("from_") + SourceName(Source(s)));
    return n;
  }();
  return names;
}

void LearnedRanker::Inputs(const SourceContext& ctx, const Candidate& c, const Scored& s, float* out) {
  int i = 0;
  for (int f = 0; f < kNumFeatures; ++f) out[i++] = s.value[f];
  out[i++] = float(s.score);
  float engagers = 0;
  if (ctx.snapshot) {
    const KindSnapshot& ks = ctx.snapshot->kind(c.ref.kind());
    if (c.ref.id() < ks.engagers.size()) engagers = ks.engagers[c.ref.id()];
  }
  out[i++] = std::log1p(engagers);
  out[i++] = std::log1p(float(ctx.state->engaged.size()));
  for (int src = 0; src < kNumSources; ++src) out[i++] = float((c.sources >> src) & 1);
}

absl::StatusOr<std::unique_ptr<LearnedRanker>> LearnedRanker::Train(const std::vector<float>& inputs,
                                                                    const std::vector<float>& labels,
                                                                    const std::vector<unsigned>& groups,
                                                                    const LearnedRankerOptions& o) {
  const size_t rows = labels.size();
  if (rows == 0 || inputs.size() != rows * kNumInputs) return absl::InvalidArgumentError("ranker: no training rows");
  DMatrix m;
  if (XGDMatrixCreateFromMat(inputs.data(), rows, kNumInputs, NAN, &m.h) != 0) return XgbError("DMatrix");
  if (XGDMatrixSetFloatInfo(m.h, "label", labels.data(), rows) != 0) return XgbError("labels");
  if (XGDMatrixSetUIntInfo(m.h, "group", groups.data(), groups.size()) != 0) return XgbError("groups");
  BoosterHandle b = nullptr;
  if (XGBoosterCreate(&m.h, 1, &b) != 0) return XgbError("create");
  std::unique_ptr<LearnedRanker> ranker(new LearnedRanker(b));
  const std::pair<const char*, std::string> params[] = {
      {"objective", o.objective},        {"eval_metric", "ndcg@20"},
      {"eta", std::to_string(o.eta)},    {"max_depth", std::to_string(o.max_depth)},
      {"tree_method", "hist"},           {"nthread", std::to_string(o.threads)},
      {"min_child_weight", "1"},         {"seed", "7"},
      {"num_pairsample", std::to_string(o.pair_samples)}};
  for (const auto& [k, v] : params)
    if (XGBoosterSetParam(b, k, v.c_str()) != 0) return XgbError("param");
  for (int it = 0; it < o.rounds; ++it)
    if (XGBoosterUpdateOneIter(b, it, m.h) != 0) return XgbError("train");
  return ranker;
}

LearnedRanker::~LearnedRanker() {
  if (booster_) XGBoosterFree(booster_);
}

absl::StatusOr<std::vector<float>> LearnedRanker::Run(const float* inputs, size_t rows, int type) const {
  std::lock_guard<std::mutex> lock(mu_);
  DMatrix m;
  if (XGDMatrixCreateFromMat(inputs, rows, kNumInputs, NAN, &m.h) != 0) return XgbError("DMatrix");
  const std::string config = "{\"type\":" + std::to_string(type) +
                             ",\"training\":false,\"iteration_begin\":0,\"iteration_end\":0,\"strict_shape\":false}";
  const bst_ulong* shape = nullptr;
  bst_ulong dim = 0;
  const float* out = nullptr;
  if (XGBoosterPredictFromDMatrix(booster_, m.h, config.c_str(), &shape, &dim, &out) != 0) return XgbError("predict");
  size_t n = 1;
  for (bst_ulong d = 0; d < dim; ++d) n *= size_t(shape[d]);
  return std::vector<float>(out, out + n);
}

absl::StatusOr<std::vector<float>> LearnedRanker::Predict(const float* inputs, size_t rows) const {
  // Type 1: raw margin (the ranking score).
  return Run(inputs, rows, 1);
}

absl::StatusOr<std::vector<float>> LearnedRanker::Contributions(const float* inputs, size_t rows) const {
  return Run(inputs, rows, 2);
}

}  // namespace affinity
