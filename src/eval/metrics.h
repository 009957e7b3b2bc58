// Offline ranking metrics, as defined by the LightGCN code: per user,
// recall = hits / |test|, precision = hits / k, NDCG with binary relevance and
// an ideal DCG over min(k, |test|) items, AP normalised by min(k, |test|), hit
// rate = any hit; each averaged over test users.
#pragma once

#include <cstdint>
#include <unordered_set>
#include <vector>

#include "base/gini.h"  // Gini of exposure counts

namespace affinity {

struct UserMetrics {
  double recall = 0, precision = 0, ndcg = 0, ap = 0, hit = 0;
};

// `ranked`: recommended ids, best first (only the first k are used).
UserMetrics ComputeUserMetrics(const std::vector<uint32_t>& ranked, const std::unordered_set<uint32_t>& test, int k);

struct MetricSums {
  double recall = 0, precision = 0, ndcg = 0, ap = 0, hit = 0;
  int64_t users = 0;
  void Add(const UserMetrics& m) {
    recall += m.recall;
    precision += m.precision;
    ndcg += m.ndcg;
    ap += m.ap;
    hit += m.hit;
    users++;
  }
  UserMetrics Mean() const {
    if (users == 0) return {};
    double n = double(users);
    return {recall / n, precision / n, ndcg / n, ap / n, hit / n};
  }
};


}  // namespace affinity
