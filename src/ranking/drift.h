// Model drift: how far what a learned ranker sees and scores at serving time
// has moved from what it was trained on. A model carries a training reference
// (a sample of its held-out rows' scores and of its most important inputs,
// saved beside it as reference.json); serving keeps a window of the newest
// rows it ranked; the two are compared per signal with the population
// stability index over the reference's deciles and a two-sample
// Kolmogorov-Smirnov test.
// Thread safety: DriftReference is a value; DriftMonitor::Observe never blocks
// (a row batch is skipped when another thread holds the window), Evaluate is
// safe concurrently with Observe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace affinity {

struct DriftSignal {
  std::string name;          // "score" or an input's name
  int input = -1;            // column of the ranker's inputs; -1: the model's score
  std::vector<float> sample; // sorted
};

struct DriftReference {
  std::vector<DriftSignal> signals;
  size_t rows = 0;   // rows the sample was drawn from
  size_t lists = 0;  // the responses they came from (0: not recorded, taken as rows / kTopRows)

  // From `rows` rows of inputs (row-major, `width` columns) and their scores,
  // drawn from `lists` responses: the score and the columns `inputs` (names
  // from `names`), each sampled to at most `max_sample` values (evenly spaced
  // over the rows, then sorted).
  static DriftReference Build(const float* inputs, size_t width, const float* scores, size_t rows,
                              const std::vector<int>& columns, const std::vector<std::string>& names,
                              size_t max_sample = 2000, size_t lists = 0);
  std::string ToJson() const;
  static absl::StatusOr<DriftReference> FromJson(std::string_view json);
};

// Population stability index of `current` against `reference` (sorted) over
// the reference's deciles: Σ (c − r) ln(c / r), shares floored at 1e-4.
double PopulationStabilityIndex(const std::vector<float>& reference, const std::vector<float>& current);
// Two-sample Kolmogorov-Smirnov statistic of two sorted samples, and its
// asymptotic p-value (the Kolmogorov distribution's tail with Stephens'
// small-sample correction).
double KsStatistic(const std::vector<float>& a, const std::vector<float>& b);
double KsPValue(double d, size_t n, size_t m);

struct DriftThresholds {
  double psi = 0.25;       // a signal drifts when its PSI exceeds this ...
  double p_value = 0.001;  // ... and the KS test's p-value is below this over the signals' count
  size_t min_rows = 500;   // no verdict with fewer rows in the window
};

struct DriftSignalReport {
  std::string name;
  double psi = 0, ks = 0, p_value = 1;
  bool breach = false;
};
struct DriftReport {
  size_t rows = 0;            // in the window
  size_t reference_rows = 0;
  // The responses behind each side: the rows of one response share a viewer
  // and move together, so the KS test counts responses, not rows (its
  // effective sample sizes), and a handful of viewers cannot pass for
  // thousands of independent rows.
  size_t lists = 0, reference_lists = 0;
  bool enough = false;        // rows >= min_rows
  bool breach = false;        // any signal
  std::vector<DriftSignalReport> signals;
};

class DriftMonitor {
 public:
  static constexpr size_t kWindow = 2000;  // the newest rows compared
  // The rows of each response the rerank stage feeds: the model's scores of
  // the blend's best min(rerank depth, kTopRows) candidates, the slice a
  // training reference takes of its held-out rows (by their blend_rank), so
  // both sides are the same population whichever policy served the logs.
  static constexpr size_t kTopRows = 20;
  explicit DriftMonitor(DriftReference reference) : reference_(std::move(reference)) {}
  // Rows ranked at serving (row-major inputs of `width` columns, their scores).
  void Observe(const float* inputs, size_t width, const float* scores, size_t rows);
  DriftReport Evaluate(const DriftThresholds& t) const;
  const DriftReference& reference() const { return reference_; }

 private:
  DriftReference reference_;
  mutable std::mutex mu_;
  std::vector<std::vector<float>> window_;  // per signal, a ring; guarded by mu_
  std::vector<uint32_t> list_of_;           // per ring slot, the observation that wrote it; guarded by mu_
  size_t next_ = 0, filled_ = 0;            // guarded by mu_
  uint32_t observed_ = 0;                   // observations so far; guarded by mu_
};

}  // namespace affinity
