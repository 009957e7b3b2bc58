// Candidates gathered for one query: per-source raw scores with attribution,
// social proof and the anchor that led to each candidate.
// Not thread-safe: one per query.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "base/ids.h"
#include "events/event.h"

namespace affinity {

enum Source : uint8_t { kSrcGraph = 0, kSrcWalk, kSrcAnn, kSrcCoeng, kSrcPopular, kSrcTrending, kNumSources };
const char* SourceName(Source s);

struct Candidate {
  Ref ref;
  std::array<float, kNumSources> raw{};  // raw score per source
  uint8_t sources = 0;                   // bit per Source
  uint16_t common = 0;                   // followed accounts linking to it (graph)
  uint16_t support = 0;                  // anchors whose co-engagement lists hold it
  float coeng_recent = 0;                // co-engagement from the viewer's newest few interactions
  uint32_t via_recency = 1000;           // recency position of the anchor that contributed most (0 = newest)
  std::array<Ref, 3> proof{};            // followed accounts that link to it
  uint8_t n_proof = 0;
  Ref via;                               // strongest co-engagement anchor
  float via_weight = 0;
  Action via_action = Action::kClick;
  bool via_seed = false;
  uint16_t via_support = UINT16_MAX;     // distinct co-engagers linking `via` to it (UINT16_MAX: not known)
  Ref via_creator;                       // followed creator that published it (graph, items)
};

class CandidateSet {
 public:
  explicit CandidateSet(Kind target) : target_(target) { items_.reserve(1024); index_.reserve(2048); }
  Kind target() const { return target_; }
  // Adds score to a candidate of the target kind (created on first sight).
  Candidate& Add(DenseId id, Source s, float score) {
    auto [it, inserted] = index_.emplace(id, uint32_t(items_.size()));
    if (inserted) {
      items_.emplace_back();
      items_.back().ref = Ref(target_, id);
    }
    Candidate& c = items_[it->second];
    c.raw[s] += score;
    c.sources |= uint8_t(1u << s);
    return c;
  }
  bool Contains(DenseId id) const { return index_.count(id) > 0; }
  size_t size() const { return items_.size(); }
  std::vector<Candidate>& items() { return items_; }
  const std::vector<Candidate>& items() const { return items_; }
  // Keeps the n candidates with the highest score(c), dropping the rest.
  template <typename ScoreFn>
  void KeepTop(size_t n, ScoreFn&& score) {
    if (items_.size() <= n) return;
    std::vector<std::pair<float, uint32_t>> order(items_.size());
    for (uint32_t i = 0; i < items_.size(); ++i) order[i] = {score(items_[i]), i};
    std::nth_element(order.begin(), order.begin() + n, order.end(),
                     [](auto& a, auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
    std::vector<Candidate> kept;
    kept.reserve(n);
    index_.clear();
    for (size_t k = 0; k < n; ++k) {
      index_.emplace(items_[order[k].second].ref.id(), uint32_t(kept.size()));
      kept.push_back(items_[order[k].second]);
    }
    items_.swap(kept);
  }
  // Drops the candidates for which drop(c) holds, keeping the others' order.
  template <typename DropFn>
  void RemoveIf(DropFn&& drop) {
    std::erase_if(items_, drop);
    index_.clear();
    for (uint32_t i = 0; i < items_.size(); ++i) index_.emplace(items_[i].ref.id(), i);
  }
  size_t CountFrom(Source s) const {
    size_t n = 0;
    for (const auto& c : items_) n += (c.sources >> s) & 1;
    return n;
  }

 private:
  Kind target_;
  std::vector<Candidate> items_;
  std::unordered_map<DenseId, uint32_t> index_;
};

}  // namespace affinity
