#include "ranking/constraints.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

namespace affinity {
namespace {

float Cosine(const float* a, const float* b, int dim) {
  float ab = 0, aa = 0, bb = 0;
  for (int d = 0; d < dim; ++d) {
    ab += a[d] * b[d];
    aa += a[d] * a[d];
    bb += b[d] * b[d];
  }
  return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : 0.f;
}

}  // namespace

std::vector<Pick> ApplyConstraints(const std::vector<ConstraintCandidate>& cands, int dim, const ConstraintOptions& o) {
  std::vector<Pick> out;
  const size_t k = size_t(std::max(0, o.k));
  if (k == 0 || cands.empty()) return out;
  std::unordered_map<uint32_t, int> per_creator;
  auto capped = [&](const ConstraintCandidate& c) {
    if (o.per_creator_cap <= 0 || !c.creator.valid()) return false;
    auto it = per_creator.find(c.creator.bits);
    return it != per_creator.end() && it->second >= o.per_creator_cap;
  };
  auto take = [&](uint32_t i, bool floor) {
    if (o.per_creator_cap > 0 && cands[i].creator.valid()) per_creator[cands[i].creator.bits]++;
    out.push_back({i, floor});
  };
  std::vector<bool> used(cands.size(), false);

  if (o.diversity <= 0 || dim <= 0) {
    for (uint32_t i = 0; i < cands.size() && out.size() < k; ++i)
      if (!capped(cands[i])) used[i] = true, take(i, false);
  } else {
    // MMR over the best `window` candidates, then plain order for the rest.
    const size_t window = std::min(cands.size(), size_t(std::max<int>(o.diversity_window, int(k))));
    double hi = cands[0].score, lo = cands[0].score;
    for (size_t i = 0; i < window; ++i) hi = std::max(hi, cands[i].score), lo = std::min(lo, cands[i].score);
    const double span = hi > lo ? hi - lo : 1.0;
    std::vector<float> max_sim(window, 0.f);
    const double lambda = std::min(o.diversity, 0.99);
    while (out.size() < k) {
      int best = -1;
      double best_v = 0;
      for (size_t i = 0; i < window; ++i) {
        if (used[i] || capped(cands[i])) continue;
        double v = (1 - lambda) * (cands[i].score - lo) / span - lambda * max_sim[i];
        if (best < 0 || v > best_v) best = int(i), best_v = v;
      }
      if (best < 0) break;
      used[size_t(best)] = true;
      take(uint32_t(best), false);
      if (const float* e = cands[size_t(best)].embedding)
        for (size_t i = 0; i < window; ++i)
          if (!used[i] && cands[i].embedding) max_sim[i] = std::max(max_sim[i], Cosine(e, cands[i].embedding, dim));
    }
    for (uint32_t i = uint32_t(window); i < cands.size() && out.size() < k; ++i)
      if (!capped(cands[i])) used[i] = true, take(i, false);
  }

  // The new-creator floor: swap the best unused new-creator candidates in for
  // the lowest-placed results from established creators.
  if (o.new_creator_share > 0) {
    const size_t head = size_t(std::max(0, o.floor_protected_head));
    const size_t want = std::min(k > head ? k - head : 0, size_t(std::floor(o.new_creator_share * double(k) + 1e-9)));
    size_t have = 0;
    for (const Pick& p : out) have += cands[p.index].new_creator;
    size_t next = 0;
    while (have < want) {
      while (next < cands.size() && (used[next] || !cands[next].new_creator || capped(cands[next]))) ++next;
      if (next >= cands.size()) break;
      if (out.size() < k) {
        used[next] = true;
        take(uint32_t(next), true);
      } else {
        // Replace the last result that is not from a new creator.
        int victim = -1;
        for (int j = int(out.size()) - 1; j >= int(head); --j)
          if (!cands[out[size_t(j)].index].new_creator) {
            victim = j;
            break;
          }
        if (victim < 0) break;
        const ConstraintCandidate& gone = cands[out[size_t(victim)].index];
        if (o.per_creator_cap > 0 && gone.creator.valid()) per_creator[gone.creator.bits]--;
        used[next] = true;
        if (o.per_creator_cap > 0 && cands[next].creator.valid()) per_creator[cands[next].creator.bits]++;
        out[size_t(victim)] = {uint32_t(next), true};
      }
      ++have;
    }
    // Floor-placed results keep their own score order among the slots they took.
    std::vector<size_t> slots;
    std::vector<uint32_t> placed;
    for (size_t j = 0; j < out.size(); ++j)
      if (out[j].floor) slots.push_back(j), placed.push_back(out[j].index);
    std::sort(placed.begin(), placed.end());
    for (size_t j = 0; j < slots.size(); ++j) out[slots[j]].index = placed[j];
  }
  return out;
}

}  // namespace affinity
