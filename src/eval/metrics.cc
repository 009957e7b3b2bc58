#include "eval/metrics.h"

#include <algorithm>
#include <cmath>

namespace affinity {

UserMetrics ComputeUserMetrics(const std::vector<uint32_t>& ranked, const std::unordered_set<uint32_t>& test, int k) {
  UserMetrics m;
  if (test.empty() || k <= 0) return m;
  double dcg = 0, ap = 0;
  int hits = 0;
  int n = std::min<int>(k, int(ranked.size()));
  for (int r = 0; r < n; ++r) {
    if (!test.count(ranked[r])) continue;
    ++hits;
    dcg += 1.0 / std::log2(r + 2.0);
    ap += double(hits) / double(r + 1);
  }
  int ideal_n = std::min<int>(k, int(test.size()));
  double idcg = 0;
  for (int r = 0; r < ideal_n; ++r) idcg += 1.0 / std::log2(r + 2.0);
  m.recall = double(hits) / double(test.size());
  m.precision = double(hits) / double(k);
  m.ndcg = idcg > 0 ? dcg / idcg : 0;
  m.ap = ap / double(ideal_n);
  m.hit = hits > 0 ? 1 : 0;
  return m;
}


}  // namespace affinity
