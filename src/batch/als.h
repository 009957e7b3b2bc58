// Implicit-feedback ALS (Hu, Koren, Volinsky 2008): confidence-weighted least
// squares with alternating exact solves, multi-threaded over rows (Eigen). Serving
// folds viewers in against the trained factors (candidates/viewer_embedding.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace affinity {

// A sparse rows x cols matrix of confidences (CSR).
struct SparseMatrix {
  uint32_t rows = 0, cols = 0;
  std::vector<uint64_t> off;   // rows + 1
  std::vector<uint32_t> idx;
  std::vector<float> val;
  SparseMatrix Transposed() const;
};

struct AlsOptions {
  int factors = 32;
  int iterations = 8;
  double lambda = 0.05;
  int threads = 2;
  uint64_t seed = 7;
};

struct AlsModel {
  int factors = 0;
  std::vector<float> user;  // rows x factors
  std::vector<float> item;  // cols x factors
  std::vector<float> gram;  // item^T item, factors x factors
  double last_loss = 0;     // weighted squared error on observed cells, last sweep
};

// `conf` holds confidence minus one (c - 1) for observed cells; preferences are 1
// there and 0 elsewhere.
AlsModel TrainAls(const SparseMatrix& conf, const AlsOptions& options);

}  // namespace affinity
