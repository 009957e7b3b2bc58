#include "batch/als.h"

#include <Eigen/Dense>
#include <random>

#include "base/parallel.h"

namespace affinity {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

SparseMatrix SparseMatrix::Transposed() const {
  SparseMatrix t;
  t.rows = cols;
  t.cols = rows;
  t.off.assign(size_t(cols) + 1, 0);
  for (uint32_t j : idx) t.off[j + 1]++;
  for (size_t j = 0; j < cols; ++j) t.off[j + 1] += t.off[j];
  t.idx.resize(idx.size());
  t.val.resize(val.size());
  std::vector<uint64_t> pos(t.off.begin(), t.off.end() - 1);
  for (uint32_t r = 0; r < rows; ++r)
    for (uint64_t p = off[r]; p < off[r + 1]; ++p) {
      uint64_t q = pos[idx[p]]++;
      t.idx[q] = r;
      t.val[q] = val[p];
    }
  return t;
}

namespace {

// One half-sweep: solves every row of X given Y.
double SolveRows(const SparseMatrix& m, const Eigen::Map<RowMat>& Y, Eigen::Map<RowMat>& X, double lambda,
                 int threads) {
  const int f = int(Y.cols());
  Eigen::MatrixXf G = Y.transpose() * Y;
  G.diagonal().array() += float(lambda);
  std::vector<double> loss(size_t(std::max(1, threads)), 0.0);
  ParallelFor(m.rows, threads, [&](size_t r, int t) {
    uint64_t b = m.off[r], e = m.off[r + 1];
    if (b == e) {
      X.row(r).setZero();
      return;
    }
    Eigen::MatrixXf A = G;
    Eigen::VectorXf rhs = Eigen::VectorXf::Zero(f);
    for (uint64_t p = b; p < e; ++p) {
      auto y = Y.row(m.idx[p]).transpose();
      float cm1 = m.val[p];
      A.noalias() += (cm1 * y) * y.transpose();
      rhs.noalias() += (1.0f + cm1) * y;
    }
    Eigen::VectorXf x = A.llt().solve(rhs);
    X.row(r) = x.transpose();
    double l = 0;
    for (uint64_t p = b; p < e; ++p) {
      double err = 1.0 - double(Y.row(m.idx[p]).dot(x));
      l += (1.0 + m.val[p]) * err * err;
    }
    loss[size_t(t)] += l;
  }, 64);
  double total = 0;
  for (double l : loss) total += l;
  return total;
}

}  // namespace

AlsModel TrainAls(const SparseMatrix& conf, const AlsOptions& o) {
  AlsModel model;
  model.factors = o.factors;
  const int f = o.factors;
  model.user.assign(size_t(conf.rows) * f, 0.f);
  model.item.assign(size_t(conf.cols) * f, 0.f);
  std::mt19937_64 rng(o.seed);
  std::normal_distribution<float> nd(0.f, 0.1f);
  for (auto& v : model.item) v = nd(rng);
  for (auto& v : model.user) v = nd(rng);
  SparseMatrix t = conf.Transposed();
  Eigen::Map<RowMat> U(model.user.data(), conf.rows, f), I(model.item.data(), conf.cols, f);
  for (int it = 0; it < o.iterations; ++it) {
    SolveRows(conf, I, U, o.lambda, o.threads);
    model.last_loss = SolveRows(t, U, I, o.lambda, o.threads);
  }
  Eigen::MatrixXf G = I.transpose() * I;
  model.gram.assign(G.data(), G.data() + size_t(f) * f);
  return model;
}

}  // namespace affinity
