// The Gini coefficient of non-negative values (exposure counts per creator):
// 0 when all are equal, towards 1 as one takes everything. Used by offline
// evaluation and by experiment reports, so both mean the same figure.
#pragma once

#include <algorithm>
#include <vector>

namespace affinity {

inline double Gini(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  double sum = 0, weighted = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    sum += v[i];
    weighted += double(i + 1) * v[i];
  }
  if (sum <= 0) return 0;
  const double n = double(v.size());
  return (2.0 * weighted) / (n * sum) - (n + 1.0) / n;
}

}  // namespace affinity
