#include "ranking/blend.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

namespace affinity {

const char* FeatureName(Feature f) {
  static const char* kNames[kNumFeatures] = {"social_graph",       "random_walk", "embedding_similarity",
                                             "co_engagement",      "popularity",  "trending",
                                             "creator_affinity",   "already_engaged"};
  return kNames[f];
}

BlendRanker::BlendRanker(const ServingOptions& o) {
  weights_ = {float(o.w_graph),   float(o.w_walk),     float(o.w_ann),
              float(o.w_coeng),   float(o.w_popular),  float(o.w_trending),
              float(o.w_creator_affinity), float(o.w_seen_penalty)};
  graph_weight_users_ = float(o.w_graph_users);
}

std::vector<Scored> BlendRanker::Score(const SourceContext& ctx, const CandidateSet& set) const {
  const auto& items = set.items();
  std::array<float, kNumSources> max_raw{};
  for (const auto& c : items)
    for (int s = 0; s < kNumSources; ++s) max_raw[s] = std::max(max_raw[s], c.raw[s]);
  // What the viewer engaged with recently, and with which creators.
  const auto& creator_hits = ctx.RecentCreators();
  std::unordered_map<uint32_t, int> seen;
  for (const auto& it : ctx.state->recent) seen[it.entity.bits]++;
  const int64_t live_now = std::max(ctx.live->last_event_ts(), int64_t(0));
  const bool pop_fresh = ctx.snapshot && ctx.snapshot->GroupFresh(kGroupPopularity, ctx.now_ms);
  std::array<float, kNumFeatures> weights = weights_;
  if (set.target() == Kind::kUser) weights[kFeatSocialGraph] = graph_weight_users_;
  std::vector<Scored> out(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const Candidate& c = items[i];
    Scored& s = out[i];
    s.index = uint32_t(i);
    auto norm = [&](Source src) { return max_raw[src] > 0 ? c.raw[src] / max_raw[src] : 0.f; };
    s.value[kFeatSocialGraph] = norm(kSrcGraph);
    s.value[kFeatRandomWalk] = norm(kSrcWalk);
    s.value[kFeatEmbedding] = norm(kSrcAnn);
    s.value[kFeatCoEngagement] = norm(kSrcCoeng);
    s.value[kFeatPopularity] = pop_fresh ? ctx.snapshot->kind(c.ref.kind()).Popularity(c.ref.id()) : 0.f;
    double eng = ctx.live->Engagement(c.ref, live_now);
    s.value[kFeatTrending] = float(eng / (eng + 5.0));
    Ref creator = c.ref.kind() == Kind::kItem ? ctx.registry->CreatorOf(c.ref) : Ref();
    auto ch = creator.valid() ? creator_hits.find(creator.bits) : creator_hits.end();
    s.value[kFeatCreatorAffinity] = ch == creator_hits.end() ? 0.f : std::min(1.f, float(ch->second) / 3.f);
    s.value[kFeatAlreadyEngaged] = seen.count(c.ref.bits) ? 1.f : 0.f;
    double score = 0;
    for (int f = 0; f < kNumFeatures; ++f) {
      s.contribution[f] = weights[f] * s.value[f];
      score += s.contribution[f];
    }
    s.score = score;
  }
  return out;
}

}  // namespace affinity
