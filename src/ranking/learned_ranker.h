// The learned re-ranker: LambdaMART (XGBoost rank:ndcg) over per-candidate
// inputs built from the blend's features and the sources' attribution. This is
// the one adapter around XGBoost's C API (which returns -1 and leaves its message
// in XGBGetLastError): errors are Status values here.
// Thread safety: Predict and Contributions are safe for concurrent use (calls are
// serialised on an internal mutex); Train is a factory.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "candidates/candidate_set.h"
#include "candidates/sources.h"
#include "ranking/blend.h"

namespace affinity {

struct LearnedRankerOptions {
  int rounds = 100;
  int max_depth = 6;
  double eta = 0.1;
  int threads = 2;
  int pair_samples = 16;  // negatives paired with each positive per round
  std::string objective = "rank:pairwise";
};

class LearnedRanker {
 public:
  static constexpr int kNumInputs = kNumFeatures + 1 + 2 + kNumSources;
  static const std::vector<std::string>& InputNames();
  // Fills `out` (kNumInputs floats) for one scored candidate.
  static void Inputs(const SourceContext& ctx, const Candidate& c, const Scored& s, float* out);

  // rows x kNumInputs inputs, one label per row, group sizes in row order.
  static absl::StatusOr<std::unique_ptr<LearnedRanker>> Train(const std::vector<float>& inputs,
                                                              const std::vector<float>& labels,
                                                              const std::vector<unsigned>& groups,
                                                              const LearnedRankerOptions& options);
  ~LearnedRanker();

  absl::StatusOr<std::vector<float>> Predict(const float* inputs, size_t rows) const;
  // TreeSHAP: rows x (kNumInputs + 1); the last column of each row is the bias.
  // Bias plus the row's contributions equals the raw prediction.
  absl::StatusOr<std::vector<float>> Contributions(const float* inputs, size_t rows) const;
  std::string version() const { return version_; }

 private:
  explicit LearnedRanker(void* booster) : booster_(booster) {}
  absl::StatusOr<std::vector<float>> Run(const float* inputs, size_t rows, int type) const;
  void* booster_;
  std::string version_ = "lambdamart-v1";
  mutable std::mutex mu_;
};

}  // namespace affinity
