#include "candidates/viewer_embedding.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>

namespace affinity {

std::vector<float> ViewerEmbedding(const SourceContext& ctx) {
  const Snapshot* snap = ctx.snapshot;
  if (!snap || snap->dim == 0) return {};
  const int dim = snap->dim;
  bool has_seeds = std::any_of(ctx.anchors.begin(), ctx.anchors.end(), [](const Anchor& a) { return a.seed; });
  if (!has_seeds && ctx.viewer.valid()) {
    if (const float* e = snap->ViewerEmbedding(ctx.viewer.id())) {
      // Trained viewer with no activity after the watermark: use the trained factors.
      if (ctx.state->last_ts <= snap->watermark_ts) return std::vector<float>(e, e + dim);
    }
  }
  // Fold in from recent activity and seeds against the fixed entity factors.
  std::vector<const float*> rows;
  std::vector<float> conf;
  for (const Anchor& a : ctx.anchors) {
    const KindSnapshot& ks = snap->kind(a.ref.kind());
    if (const float* y = ks.Embedding(a.ref.id(), dim)) {
      rows.push_back(y);
      conf.push_back(float(snap->als_alpha * std::log1p(std::max(0.5f, a.weight))));
    }
  }
  if (rows.empty() || snap->gram.size() != size_t(dim) * dim) {
    if (ctx.viewer.valid())
      if (const float* e = snap->ViewerEmbedding(ctx.viewer.id())) return std::vector<float>(e, e + dim);
    return {};
  }
  std::vector<float> x(size_t(dim), 0.f);
  FoldIn(rows.data(), conf.data(), rows.size(), snap->gram.data(), dim, snap->als_lambda, x.data());
  return x;
}

void FoldIn(const float* rows[], const float* conf_minus_one, size_t n, const float* gram, int f, double lambda,
            float* out) {
  Eigen::Map<const Eigen::MatrixXf> G(gram, f, f);
  Eigen::MatrixXf A = G;
  A.diagonal().array() += float(lambda);
  Eigen::VectorXf rhs = Eigen::VectorXf::Zero(f);
  for (size_t i = 0; i < n; ++i) {
    Eigen::Map<const Eigen::VectorXf> y(rows[i], f);
    A.noalias() += (conf_minus_one[i] * y) * y.transpose();
    rhs.noalias() += (1.0f + conf_minus_one[i]) * y;
  }
  Eigen::VectorXf x = A.llt().solve(rhs);
  for (int i = 0; i < f; ++i) out[i] = x[i];
}

}  // namespace affinity
