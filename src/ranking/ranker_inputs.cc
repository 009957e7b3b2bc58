#include "ranking/ranker_inputs.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>

#include "base/strings.h"
#include "features/feature_registry.h"

namespace affinity {
namespace {

constexpr float kAbsentRank = 1000.f;
// The viewer's newest interactions the sequence-aware inputs read.
constexpr uint32_t kRecentMean = 5, kRecentMax = 10, kRecentLinks = 20;

// Rank of each row within each source's list (by raw score, among these rows),
// rows x kNumSources, kAbsentRank where the source did not propose it.
std::vector<float> SourceRanks(const std::vector<Candidate>& items, const std::vector<Scored>& rows) {
  const size_t n = rows.size();
  std::vector<uint32_t> order(n);
  std::vector<float> rank(n * kNumSources, kAbsentRank);
  for (int s = 0; s < kNumSources; ++s) {
    std::iota(order.begin(), order.end(), 0u);
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
      float x = items[rows[a].index].raw[s], y = items[rows[b].index].raw[s];
      return x != y ? x > y : a < b;
    });
    for (size_t r = 0; r < n; ++r) {
      const Candidate& c = items[rows[order[r]].index];
      if (!((c.sources >> s) & 1)) break;
      rank[size_t(order[r]) * kNumSources + s] = float(r);
    }
  }
  return rank;
}

// Unit factors of the viewer's newest interactions (sequence-aware: where the
// viewer is now, which the whole-history viewer factor blurs), per kind.
struct RecentFactors {
  struct Factor {
    Kind kind;
    uint32_t recency;
    const float* y;
    float inv_norm;
  };
  std::vector<Factor> recent;          // the kRecentMax newest with a factor
  std::vector<float> mean[kNumKinds];  // sum of the kRecentMean newest unit factors
};

RecentFactors ReadRecentFactors(const SourceContext& ctx, const Snapshot* snap, int dim) {
  RecentFactors f;
  if (!snap || dim <= 0) return f;
  for (const Anchor& a : ctx.anchors) {
    if (a.seed || a.recency >= kRecentMax) continue;
    const float* y = snap->kind(a.ref.kind()).Embedding(a.ref.id(), dim);
    if (!y) continue;
    float nn = 0;
    for (int d = 0; d < dim; ++d) nn += y[d] * y[d];
    if (nn <= 0) continue;
    f.recent.push_back({a.ref.kind(), a.recency, y, 1.f / std::sqrt(nn)});
    if (a.recency >= kRecentMean) continue;
    auto& m = f.mean[int(a.ref.kind())];
    m.resize(size_t(dim), 0.f);
    for (int d = 0; d < dim; ++d) m[d] += y[d] * f.recent.back().inv_norm;
  }
  return f;
}

// Cosines of one candidate's factor to the viewer's recent factors.
struct Cosines {
  float mean = 0, max = 0, newest = 0;
};

Cosines FactorCosines(const Snapshot& snap, Ref ref, int dim, const RecentFactors& rf) {
  Cosines c;
  const float* y = snap.kind(ref.kind()).Embedding(ref.id(), dim);
  if (!y) return c;
  float nn = 0;
  for (int d = 0; d < dim; ++d) nn += y[d] * y[d];
  const float inv = nn > 0 ? 1.f / std::sqrt(nn) : 0.f;
  const auto& m = rf.mean[int(ref.kind())];
  if (!m.empty()) {
    float dm = 0, mm = 0;
    for (int d = 0; d < dim; ++d) dm += m[d] * y[d], mm += m[d] * m[d];
    c.mean = mm > 0 ? dm * inv / std::sqrt(mm) : 0.f;
  }
  for (const auto& r : rf.recent) {
    if (r.kind != ref.kind()) continue;
    float dd = 0;
    for (int d = 0; d < dim; ++d) dd += r.y[d] * y[d];
    c.max = std::max(c.max, dd * inv * r.inv_norm);
    if (r.recency == 0) c.newest = dd * inv * r.inv_norm;
  }
  return c;
}

// Co-engagement and session co-engagement of each row with each of the
// viewer's 20 newest interactions, read from the anchors' lists (the blend sees
// only their weighted sum); then the other direction: each row's own lists read
// against the viewer's history. Those lists rank neighbours by their share of
// the row's engagers, so a niche row tied to what the viewer did shows there
// even when it is far down the anchors' own lists.
struct ListLinks {
  explicit ListLinks(size_t n)
      : newest(n, 0.f), newest3(n, 0.f), sum(n, 0.f), count(n, 0.f), nearest(n, kAbsentRank), session_newest(n, 0.f),
        session_recent(n, 0.f), session_support(n, 0.f), rev_sum(n, 0.f), rev_recent(n, 0.f), rev_support(n, 0.f),
        srev(n, 0.f), srev_support(n, 0.f) {}
  std::vector<float> newest, newest3, sum, count, nearest;
  std::vector<float> session_newest, session_recent, session_support;
  std::vector<float> rev_sum, rev_recent, rev_support, srev, srev_support;
};

// Entries [begin, end) of a CSR row; empty for ids the snapshot has no row for.
std::pair<uint32_t, uint32_t> RowRange(const FrozenArray<uint32_t>& off, DenseId id) {
  return id + 1 < off.size() ? std::pair(off[id], off[id + 1]) : std::pair(0u, 0u);
}

// The viewer's history as a bitmap over the snapshot's dense ids (list entries
// never name a newer entity): one bit test per list entry.
class HistoryBits {
 public:
  explicit HistoryBits(uint32_t count) : count_(count), bits_((size_t(count) + 63) / 64, 0) {}
  void Mark(DenseId id) {
    if (id < count_) bits_[id >> 6] |= uint64_t(1) << (id & 63);
  }
  bool Has(DenseId id) const { return id < count_ && ((bits_[id >> 6] >> (id & 63)) & 1); }

 private:
  uint32_t count_;
  std::vector<uint64_t> bits_;
};

// Forward links: the anchors' lists, looked up for the rows.
void ForwardLinks(const SourceContext& ctx, const KindSnapshot& ks, Kind target,
                  const std::unordered_map<DenseId, uint32_t>& row_of, ListLinks* l) {
  for (const Anchor& a : ctx.anchors) {
    if (a.seed || a.ref.kind() != target || a.recency >= kRecentLinks) continue;
    const float shrink = std::pow(0.8f, float(a.recency));
    for (auto [p, end] = RowRange(ks.nb_off, a.ref.id()); p < end; ++p) {
      auto it = row_of.find(ks.nb_ids[p]);
      if (it == row_of.end()) continue;
      const uint32_t r = it->second;
      if (a.recency == 0) l->newest[r] += ks.nb_w[p];
      if (a.recency < 3) l->newest3[r] += ks.nb_w[p];
      l->sum[r] += ks.nb_w[p];
      l->count[r] += 1.f;
      l->nearest[r] = std::min(l->nearest[r], float(a.recency));
    }
    for (auto [p, end] = RowRange(ks.seq_off, a.ref.id()); p < end; ++p) {
      auto it = row_of.find(ks.seq_ids[p]);
      if (it == row_of.end()) continue;
      const uint32_t r = it->second;
      if (a.recency == 0) l->session_newest[r] += ks.seq_w[p];
      l->session_recent[r] += ks.seq_w[p] * shrink;
      l->session_support[r] += 1.f;
    }
  }
}

// Reverse links: each row's own lists, read against the viewer's history.
void ReverseLinks(const SourceContext& ctx, const KindSnapshot& ks, Kind target, const std::vector<Candidate>& items,
                  const std::vector<Scored>& rows, ListLinks* l) {
  HistoryBits history(ks.count);
  for (Ref r : ctx.state->engaged)
    if (r.kind() == target) history.Mark(r.id());
  std::unordered_map<DenseId, float> anchor_shrink;  // 0.8 per newer interaction
  anchor_shrink.reserve(ctx.anchors.size() * 2);
  for (const Anchor& a : ctx.anchors) {
    if (a.seed || a.ref.kind() != target || a.recency == UINT32_MAX) continue;
    anchor_shrink.emplace(a.ref.id(), std::pow(0.8f, float(a.recency)));
    history.Mark(a.ref.id());
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    const DenseId id = items[rows[i].index].ref.id();
    for (auto [p, end] = RowRange(ks.nb_off, id); p < end; ++p) {
      if (!history.Has(ks.nb_ids[p])) continue;
      l->rev_support[i] += 1.f;
      if (auto it = anchor_shrink.find(ks.nb_ids[p]); it != anchor_shrink.end()) {
        l->rev_sum[i] += ks.nb_w[p];
        l->rev_recent[i] += ks.nb_w[p] * it->second;
      }
    }
    for (auto [p, end] = RowRange(ks.seq_off, id); p < end; ++p) {
      if (!history.Has(ks.seq_ids[p])) continue;
      l->srev_support[i] += 1.f;
      if (auto it = anchor_shrink.find(ks.seq_ids[p]); it != anchor_shrink.end()) l->srev[i] += ks.seq_w[p] * it->second;
    }
  }
}

ListLinks ReadListLinks(const SourceContext& ctx, const CandidateSet& set, const std::vector<Scored>& rows) {
  ListLinks l(rows.size());
  if (!ctx.snapshot) return l;
  const Kind target = set.target();
  const KindSnapshot& ks = ctx.snapshot->kind(target);
  std::unordered_map<DenseId, uint32_t> row_of;
  row_of.reserve(rows.size() * 2);
  for (size_t i = 0; i < rows.size(); ++i) row_of.emplace(set.items()[rows[i].index].ref.id(), uint32_t(i));
  ForwardLinks(ctx, ks, target, row_of, &l);
  ReverseLinks(ctx, ks, target, set.items(), rows, &l);
  return l;
}

// What every row of one query shares.
struct QueryInputs {
  const Snapshot* snap;
  int dim;
  bool fresh;
  float activity, follows;
  int64_t live_now;
};

// The row's own inputs: its blend features and scores, its sources, factor
// closeness, the list links, its creator, graph statistics and recency.
void FillRow(const SourceContext& ctx, const QueryInputs& q, const Scored& sc, const Candidate& c, size_t i,
             const std::vector<float>& rank, const RecentFactors& rf, const ListLinks& l, float* x) {
  for (int f = 0; f < kNumFeatures; ++f) x[kInBlendFeatures + f] = sc.value[f];
  x[kInBlendScore] = float(sc.score);
  for (int s = 0; s < kNumSources; ++s) {
    x[kInSourceScore + s] = c.raw[s];
    x[kInSourceRank + s] = rank[i * kNumSources + s];
  }
  float dot = 0, engagers = 0;
  bool in_snapshot = false;
  if (q.snap) {
    const KindSnapshot& ks = q.snap->kind(c.ref.kind());
    in_snapshot = c.ref.id() < ks.count;
    if (c.ref.id() < ks.engagers.size()) engagers = ks.engagers[c.ref.id()];
    if (const float* y = ks.Embedding(c.ref.id(), q.dim); y && int(ctx.embedding.size()) == q.dim)
      for (int d = 0; d < q.dim; ++d) dot += ctx.embedding[d] * y[d];
  }
  x[kInEmbeddingDot] = q.fresh ? dot : 0.f;
  const Cosines cos = q.snap && q.fresh ? FactorCosines(*q.snap, c.ref, q.dim, rf) : Cosines();
  x[kInNewestCosine] = cos.newest;
  x[kInRecentCosine] = cos.mean;
  x[kInRecentCosineMax] = cos.max;
  x[kInBlendRank] = float(i);
  x[kInCoengReverse] = l.rev_sum[i];
  x[kInCoengReverseRecent] = l.rev_recent[i];
  x[kInCoengReverseSupport] = l.rev_support[i];
  x[kInSessionNewest] = l.session_newest[i];
  x[kInSessionRecent] = l.session_recent[i];
  x[kInSessionSupport] = l.session_support[i];
  x[kInSessionReverse] = l.srev[i];
  x[kInSessionReverseSupport] = l.srev_support[i];
  x[kInCoengNewest] = l.newest[i];
  x[kInCoengNewest3] = l.newest3[i];
  x[kInCoengRecent20] = l.sum[i];
  x[kInCoengRecent20Support] = l.count[i];
  x[kInCoengNearestRecency] = l.nearest[i];
  x[kInCoengSupport] = float(c.support);
  x[kInCoengBest] = c.via_weight;
  x[kInCoengRecent] = c.coeng_recent;
  x[kInCoengBestRecency] = float(c.via_recency);
  x[kInCommonNeighbours] = float(c.common);
  const auto& creator_hits = ctx.RecentCreators();
  Ref creator = c.ref.kind() == Kind::kItem ? ctx.registry->CreatorOf(c.ref) : Ref();
  auto ch = creator.valid() ? creator_hits.find(creator.bits) : creator_hits.end();
  x[kInCreatorRecent] = ch == creator_hits.end() ? 0.f : float(ch->second);
  x[kInLogEngagers] = std::log1p(engagers);
  x[kInLogFollowers] = std::log1p(float(ctx.live->Followers(c.ref)));
  x[kInViewerActivity] = q.activity;
  x[kInViewerAnchors] = float(ctx.anchors.size());
  x[kInViewerFollows] = q.follows;
  const int64_t first = ctx.live->FirstEngagedMs(c.ref), last = ctx.live->LastEngagedMs(c.ref);
  x[kInAgeHours] = first > 0 ? float(std::max<int64_t>(0, q.live_now - first)) / 3.6e6f : -1.f;
  x[kInHoursSinceEngaged] = last > 0 ? float(std::max<int64_t>(0, q.live_now - last)) / 3.6e6f : -1.f;
  x[kInFeaturesFresh] = q.fresh ? 1.f : 0.f;
  x[kInNewerThanSnapshot] = in_snapshot ? 0.f : 1.f;
  // Streaming groups: the candidate's and its creator's decayed engagement, and
  // the viewer's recency with both.
  auto trend = [](double c1h, double c1d) { return c1d > 0 ? float(24.0 * c1h / c1d) : 0.f; };
  auto hours_since = [&](int64_t ts) { return ts > 0 ? float(std::max<int64_t>(0, q.live_now - ts)) / 3.6e6f : -1.f; };
  const auto counts = ctx.live->EntityCounts(c.ref, q.live_now);
  x[kInEntityCount1h] = std::log1p(float(counts[0]));
  x[kInEntityCount1d] = std::log1p(float(counts[1]));
  x[kInEntityCount7d] = std::log1p(float(counts[2]));
  x[kInEntityTrend] = trend(counts[0], counts[1]);
  const Ref owner = c.ref.kind() == Kind::kCreator ? c.ref : creator;
  const auto creator_counts = owner.valid() ? ctx.live->CreatorCounts(owner, q.live_now) : decltype(counts){};
  x[kInCreatorCount1d] = std::log1p(float(creator_counts[1]));
  x[kInCreatorVelocity] = trend(creator_counts[0], creator_counts[1]);
  const CreatorTouch* touch = owner.valid() ? ctx.state->Creator(owner) : nullptr;
  x[kInViewerCreatorEngagements] = std::log1p(float(touch ? touch->count : 0));
  x[kInViewerCreatorHours] = hours_since(touch ? touch->last_ts : 0);
  x[kInViewerEntityHours] = hours_since(ctx.state->LastEngagedMs(c.ref));
}

}  // namespace

const std::vector<std::string>& RankerInputNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n(kNumRankInputs);
    for (int f = 0; f < kNumFeatures; ++f) n[kInBlendFeatures + f] = FeatureName(Feature(f));
    n[kInBlendScore] = "blend_score";
    for (int s = 0; s < kNumSources; ++s) {
      n[kInSourceScore + s] = std::string(SourceName(Source(s))) + "_score";
      n[kInSourceRank + s] = std::string(SourceName(Source(s))) + "_rank";
    }
    n[kInEmbeddingDot] = "embedding_dot";
    n[kInCoengSupport] = "coengagement_support";
    n[kInCoengBest] = "coengagement_best_anchor";
    n[kInCoengRecent] = "coengagement_recent";
    n[kInCoengBestRecency] = "coengagement_anchor_recency";
    n[kInNewestCosine] = "newest_cosine";
    n[kInRecentCosine] = "recent_cosine";
    n[kInRecentCosineMax] = "recent_cosine_max";
    n[kInCoengNewest] = "coengagement_newest";
    n[kInCoengNewest3] = "coengagement_newest3";
    n[kInCoengRecent20] = "coengagement_recent20";
    n[kInCoengRecent20Support] = "coengagement_recent20_support";
    n[kInCoengNearestRecency] = "coengagement_nearest_recency";
    n[kInBlendRank] = "blend_rank";
    n[kInCoengReverse] = "coengagement_reverse";
    n[kInCoengReverseRecent] = "coengagement_reverse_recent";
    n[kInCoengReverseSupport] = "coengagement_reverse_support";
    n[kInSessionNewest] = "session_newest";
    n[kInSessionRecent] = "session_recent";
    n[kInSessionSupport] = "session_support";
    n[kInSessionReverse] = "session_reverse";
    n[kInSessionReverseSupport] = "session_reverse_support";
    n[kInCommonNeighbours] = "common_neighbours";
    n[kInCreatorRecent] = "recent_with_creator";
    n[kInLogEngagers] = "log_engagers";
    n[kInLogFollowers] = "log_followers";
    n[kInViewerActivity] = "viewer_activity";
    n[kInViewerAnchors] = "viewer_anchors";
    n[kInViewerFollows] = "viewer_follows";
    n[kInAgeHours] = "age_hours";
    n[kInHoursSinceEngaged] = "hours_since_engaged";
    n[kInFeaturesFresh] = "features_fresh";
    n[kInNewerThanSnapshot] = "newer_than_snapshot";
    n[kInEntityCount1h] = "entity_count_1h";
    n[kInEntityCount1d] = "entity_count_1d";
    n[kInEntityCount7d] = "entity_count_7d";
    n[kInEntityTrend] = "entity_trend";
    n[kInCreatorCount1d] = "creator_count_1d";
    n[kInCreatorVelocity] = "creator_velocity";
    n[kInViewerCreatorEngagements] = "viewer_creator_engagements";
    n[kInViewerCreatorHours] = "viewer_creator_hours";
    n[kInViewerEntityHours] = "viewer_entity_hours";
    return n;
  }();
  return names;
}

void AssembleRankerInputs(const SourceContext& ctx, const CandidateSet& set, const std::vector<Scored>& rows,
                          float* out) {
  const auto& items = set.items();
  const std::vector<float> rank = SourceRanks(items, rows);
  QueryInputs q;
  q.snap = ctx.snapshot;
  q.dim = q.snap ? q.snap->dim : 0;
  q.fresh = q.snap && q.snap->GroupFresh(kGroupEntityEmbedding, ctx.now_ms) &&
            q.snap->GroupFresh(kGroupPopularity, ctx.now_ms);
  q.activity = std::log1p(float(ctx.state->engaged.size()));
  q.follows = std::log1p(float(ctx.state->follows.size()));
  q.live_now = std::max(ctx.live->last_event_ts(), ctx.now_ms);
  const RecentFactors rf = ReadRecentFactors(ctx, q.snap, q.dim);
  const ListLinks links = ReadListLinks(ctx, set, rows);
  for (size_t i = 0; i < rows.size(); ++i)
    FillRow(ctx, q, rows[i], items[rows[i].index], i, rank, rf, links, out + i * kNumRankInputs);
}

std::string EncodeRankerRow(const std::vector<float>& row) { return EncodeFloats(row.data(), row.size()); }

bool DecodeRankerRow(std::string_view base64, std::vector<float>* row) {
  if (!DecodeFloats(base64, row) || row->empty() || row->size() > size_t(kNumRankInputs)) return false;
  row->resize(size_t(kNumRankInputs), std::nanf(""));  // inputs appended since it was logged: missing
  return true;
}

}  // namespace affinity
