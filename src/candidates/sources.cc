#include "candidates/sources.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "candidates/viewer_embedding.h"

namespace affinity {

const char* SourceName(Source s) {
  static const char* kNames[kNumSources] = {"graph", "walk", "ann", "coengagement", "popular", "trending"};
  return kNames[s];
}

namespace {

void AddProof(Candidate& c, Ref who) {
  c.common++;
  if (c.n_proof < c.proof.size()) c.proof[c.n_proof++] = who;
}

uint64_t SplitMix(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

const std::unordered_map<uint32_t, int>& SourceContext::RecentCreators() const {
  if (!recent_creators_) {
    recent_creators_.emplace();
    for (const auto& it : state->recent) {
      Ref creator = it.entity.kind() == Kind::kCreator ? it.entity : registry->CreatorOf(it.entity);
      if (creator.valid()) (*recent_creators_)[creator.bits]++;
    }
  }
  return *recent_creators_;
}

std::vector<Anchor> BuildAnchors(const ViewerState& state, const std::vector<Ref>& seeds, const ServingOptions& o) {
  const size_t kMaxAnchors = size_t(o.max_anchors);
  const double half_life_hours = o.anchor_half_life_hours;
  const float older_share = float(o.anchor_older_share), step_decay = float(o.anchor_step_decay);
  const float floor = float(o.anchor_min_weight);
  std::vector<Anchor> out;
  for (Ref s : seeds) out.push_back({s, 1.5f, Action::kClick, true, 0});
  // Recent interactions first, weighted by action weight and by recency: half
  // weight per half-life before the viewer's newest interaction, times
  // `step_decay` per newer interaction, never below `floor`.
  const int64_t newest = state.recent.empty() ? 0 : state.recent.back().ts;
  const double half_life_ms = std::max(1e-3, half_life_hours) * 3600e3;
  float step = 1.0f;
  uint32_t position = 0;
  for (auto it = state.recent.rbegin(); it != state.recent.rend() && out.size() < kMaxAnchors; ++it) {
    const float decay =
        std::max(floor, step * float(std::exp2(-double(std::max<int64_t>(0, newest - it->ts)) / half_life_ms)));
    step *= step_decay;
    bool dup = false;
    for (auto& a : out)
      if (a.ref == it->entity) {
        a.weight += decay * 0.25f;
        dup = true;
        break;
      }
    if (!dup)
      out.push_back({it->entity, decay * (0.5f + std::log1p(std::max(0.f, it->weight))), it->action, false, position});
    ++position;
  }
  // Then older engagement beyond the recent window.
  const float old_weight = older_share * (0.5f + std::log1p(1.0f));
  if (out.size() < kMaxAnchors && !state.engaged.empty()) {
    std::vector<Ref> have;
    for (const auto& a : out) have.push_back(a.ref);
    std::sort(have.begin(), have.end());
    for (Ref r : state.engaged) {
      if (out.size() >= kMaxAnchors) break;
      if (!std::binary_search(have.begin(), have.end(), r)) out.push_back({r, old_weight, Action::kClick, false, UINT32_MAX});
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const Anchor& a, const Anchor& b) { return a.weight > b.weight; });
  return out;
}

void GraphSource(const SourceContext& ctx, CandidateSet* out) {
  const Kind target = out->target();
  const auto& follows = ctx.state->follows;
  const size_t max_follows = 300;
  size_t added = 0;
  for (size_t fi = 0; fi < follows.size() && fi < max_follows; ++fi) {
    Ref f = follows[fi];
    if (f.kind() == Kind::kUser) {
      auto fs = ctx.live->Viewer(f);
      if (target == Kind::kItem) {
        // What the people the viewer follows engaged with lately.
        for (auto it = fs->recent.rbegin(); it != fs->recent.rend(); ++it) {
          if (it->entity.kind() != Kind::kItem) continue;
          Candidate& c = out->Add(it->entity.id(), kSrcGraph, 1.0f);
          if (c.n_proof == 0 || !(c.proof[c.n_proof - 1] == f)) AddProof(c, f);
          if (++added > size_t(ctx.options->graph_budget) * 4) return;
        }
      } else {
        // Accounts followed by the accounts the viewer follows (Adamic-Adar weight).
        float w = 1.0f / std::log(2.0f + float(fs->follows.size()));
        size_t n = 0;
        for (Ref t : fs->follows) {
          if (t.kind() != target || n++ > 500) continue;
          Candidate& c = out->Add(t.id(), kSrcGraph, w);
          AddProof(c, f);
        }
      }
    } else if (f.kind() == Kind::kCreator && target == Kind::kItem) {
      // The newest items of followed creators.
      auto items = ctx.registry->ItemsOf(f.id());
      size_t n = 0;
      for (auto it = items->rbegin(); it != items->rend() && n < 20; ++it, ++n) {
        Candidate& c = out->Add(*it, kSrcGraph, 1.0f / (1.0f + 0.1f * float(n)));
        c.via_creator = f;
      }
    }
  }
}

namespace {

// Per-thread open-addressing accumulator for co-engagement scores: one probe
// sequence per neighbour instead of a node allocation, cleared through its
// list of used slots. A slot holds its key beside its sums, so a probe touches
// one cache line; Prefetch warms the slot of a neighbour a few entries ahead.
constexpr uint16_t kUnknownSupport = UINT16_MAX;

class CoengAccumulator {
 public:
  struct Acc {
    float score;
    float best;
    uint32_t anchor;
    uint16_t count;         // anchors whose co-engagement list names it (session lists add weight only)
    uint16_t best_support;  // distinct co-engagers behind the strongest contribution (kUnknownSupport: not counted)
    float recent;  // from the viewer's newest few interactions only
  };
  void Reset(size_t expected) {
    size_t want = 16;
    while (want < expected * 2) want <<= 1;
    if (slots_.size() < want) slots_.assign(want, Slot{});
    mask_ = slots_.size() - 1;
  }
  void Prefetch(DenseId id) const { __builtin_prefetch(&slots_[Home(id + 1)]); }
  void Add(DenseId id, float contribution, uint32_t anchor, bool recent, bool counts = true,
           uint16_t support = kUnknownSupport) {
    const uint32_t key = id + 1;
    size_t h = Home(key);
    while (slots_[h].key != 0 && slots_[h].key != key) h = (h + 1) & mask_;
    Slot& slot = slots_[h];
    if (slot.key == 0) {
      if (used_.size() * 2 >= slots_.size()) return;  // full: keep what we have
      slot.key = key;
      slot.acc = {0.f, 0.f, 0, 0, kUnknownSupport, 0.f};
      used_.push_back(uint32_t(h));
    }
    Acc& a = slot.acc;
    a.score += contribution;
    a.count += (counts && a.count < UINT16_MAX) ? 1 : 0;
    if (recent) a.recent += contribution;
    if (contribution > a.best) {
      a.best = contribution;
      a.anchor = anchor;
      a.best_support = support;
    }
  }
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (uint32_t h : used_) fn(slots_[h].key - 1, slots_[h].acc);
  }
  void Clear() {
    for (uint32_t h : used_) slots_[h].key = 0;
    used_.clear();
  }

 private:
  struct Slot {
    uint32_t key = 0;  // id + 1; 0: empty
    Acc acc{};
  };
  size_t Home(uint32_t key) const { return (size_t(key) * 0x9E3779B1u) & mask_; }
  std::vector<Slot> slots_;
  std::vector<uint32_t> used_;
  size_t mask_ = 0;
};

}  // namespace

// Anchors among the viewer's newest this many interactions feed `coeng_recent`.
constexpr uint32_t kRecentAnchors = 5;

void CoEngagementSource(const SourceContext& ctx, CandidateSet* out) {
  const Kind target = out->target();
  const Snapshot* snap = ctx.snapshot;
  // Every anchor's neighbours are summed first; the strongest `coeng_budget`
  // become candidates, each crediting the anchor that contributed most.
  // Session neighbours (engaged close after or before the anchor in viewers'
  // timelines) add to the same sums at `coeng_session_weight`.
  thread_local CoengAccumulator acc;
  const float session_weight = float(ctx.options->coeng_session_weight);
  size_t expected = 64;
  if (snap) {
    const KindSnapshot& ks = snap->kind(target);
    for (const Anchor& a : ctx.anchors) {
      if (a.ref.kind() == target && a.ref.id() + 1 < ks.nb_off.size())
        expected += ks.nb_off[a.ref.id() + 1] - ks.nb_off[a.ref.id()];
      if (session_weight > 0 && a.ref.kind() == target && a.ref.id() + 1 < ks.seq_off.size())
        expected += ks.seq_off[a.ref.id() + 1] - ks.seq_off[a.ref.id()];
    }
  }
  if (target == Kind::kCreator) expected += ctx.anchors.size() * 64;
  acc.Reset(expected);
  for (size_t ai = 0; ai < ctx.anchors.size(); ++ai) {
    const Anchor& a = ctx.anchors[ai];
    Ref anchor = a.ref;
    if (target == Kind::kCreator && anchor.kind() == Kind::kItem) {
      // Engaging with an item is engaging with its creator.
      Ref creator = ctx.registry->CreatorOf(anchor);
      if (!creator.valid()) continue;
      acc.Add(creator.id(), a.weight * 0.5f, uint32_t(ai), a.recency < kRecentAnchors);
      anchor = creator;
    }
    if (anchor.kind() != target || !snap) continue;
    const KindSnapshot& ks = snap->kind(target);
    if (anchor.id() + 1 >= ks.nb_off.size()) continue;
    constexpr uint32_t kAhead = 8;
    const uint32_t nb_end = ks.nb_off[anchor.id() + 1];
    const bool has_sup = ks.nb_sup.size() == ks.nb_ids.size();
    for (uint32_t p = ks.nb_off[anchor.id()]; p < nb_end; ++p) {
      if (p + kAhead < nb_end) acc.Prefetch(ks.nb_ids[p + kAhead]);
      acc.Add(ks.nb_ids[p], a.weight * ks.nb_w[p], uint32_t(ai), a.recency < kRecentAnchors, true,
              has_sup ? ks.nb_sup[p] : kUnknownSupport);
    }
    if (session_weight > 0 && anchor.id() + 1 < ks.seq_off.size())
      for (uint32_t p = ks.seq_off[anchor.id()]; p < ks.seq_off[anchor.id() + 1]; ++p)
        acc.Add(ks.seq_ids[p], session_weight * a.weight * ks.seq_w[p], uint32_t(ai), a.recency < kRecentAnchors,
                /*counts=*/false);
  }
  struct Row {
    float score;
    DenseId id;
    float best;
    uint32_t anchor;
    uint32_t count;
    uint16_t best_support;
    float recent;
  };
  std::vector<Row> ranked;
  acc.ForEach([&](DenseId id, const CoengAccumulator::Acc& a) {
    ranked.push_back({a.score, id, a.best, a.anchor, a.count, a.best_support, a.recent});
  });
  acc.Clear();
  size_t n = std::min(ranked.size(), size_t(ctx.options->coeng_budget));
  std::partial_sort(ranked.begin(), ranked.begin() + n, ranked.end(), [](const Row& x, const Row& y) {
    return x.score > y.score || (x.score == y.score && x.id < y.id);
  });
  for (size_t i = 0; i < n; ++i) {
    const Row& r = ranked[i];
    Candidate& c = out->Add(r.id, kSrcCoeng, r.score);
    c.support = uint16_t(std::min<uint32_t>(r.count, 65535));
    c.coeng_recent = r.recent;
    c.via_recency = std::min<uint32_t>(ctx.anchors[r.anchor].recency, 1000);
    const Anchor& anchor = ctx.anchors[r.anchor];
    if (r.best > c.via_weight) {
      c.via = anchor.ref;
      c.via_weight = r.best;
      c.via_action = anchor.action;
      c.via_seed = anchor.seed;
      c.via_support = r.best_support;
    }
  }
}

void AnnSource(const SourceContext& ctx, CandidateSet* out) {
  if (!ctx.snapshot) return;
  const KindSnapshot& ks = ctx.snapshot->kind(out->target());
  if (!ks.ann || !ctx.snapshot->GroupFresh(kGroupEntityEmbedding, ctx.now_ms)) return;
  std::vector<float> computed;
  const std::vector<float>& q = ctx.embedding_ready ? ctx.embedding : (computed = ViewerEmbedding(ctx));
  if (q.empty()) return;
  for (auto [label, ip] : ks.ann->Search(q.data(), size_t(ctx.options->ann_budget))) {
    if (label >= ks.ann_ids.size()) continue;
    out->Add(ks.ann_ids[label], kSrcAnn, std::max(0.f, ip));
  }
}

void WalkSource(const SourceContext& ctx, CandidateSet* out) {
  const Snapshot* snap = ctx.snapshot;
  if (!snap) return;
  const Kind target = out->target();
  std::vector<Ref> starts;
  for (const Anchor& a : ctx.anchors) {
    const KindSnapshot& ks = snap->kind(a.ref.kind());
    if (a.ref.id() + 1 < ks.eng_off.size() && ks.eng_off[a.ref.id() + 1] > ks.eng_off[a.ref.id()])
      starts.push_back(a.ref);
  }
  if (starts.empty()) return;
  const int steps = ctx.options->walk_steps;
  const float kRestart = 0.35f;
  // Visits are collected, then counted once per distinct entity. The steps are
  // shared by kWalkers independent walkers advanced in turn: each step is a chain
  // of dependent cache misses (engagers, then their engagements), and interleaving
  // walkers lets those chains overlap instead of running back to back.
  constexpr int kWalkers = 8;
  std::vector<uint32_t> visits;
  visits.reserve(size_t(steps) * 2);
  uint64_t seed = (uint64_t(ctx.viewer.bits) << 32) ^ snap->watermark_offset ^ 0x5eedull;
  std::array<uint64_t, kWalkers> rng;
  std::array<Ref, kWalkers> cur;
  for (int w = 0; w < kWalkers; ++w) {
    rng[w] = SplitMix(seed);
    cur[w] = starts[SplitMix(rng[w]) % starts.size()];
  }
  // Each round advances every walker one step in four phases; each phase reads
  // what the previous one prefetched for every walker, so the walkers' cache
  // misses are in flight together. Each walker draws its random numbers in the
  // same order as a walker stepped alone.
  std::array<const KindSnapshot*, kWalkers> kind_of{};
  std::array<uint32_t, kWalkers> at{};
  std::array<uint8_t, kWalkers> live{};
  for (int s = 0; s < steps; s += kWalkers) {
    const int active = std::min(kWalkers, steps - s);
    for (int w = 0; w < active; ++w) {  // 1. restart, or pick an engager of the current entity
      uint64_t& r = rng[w];
      if (float(SplitMix(r) % 1000) < kRestart * 1000) cur[w] = starts[SplitMix(r) % starts.size()];
      const KindSnapshot& ks = snap->kind(cur[w].kind());
      const uint32_t b = ks.eng_off[cur[w].id()], e = ks.eng_off[cur[w].id() + 1];
      live[w] = b != e;
      if (!live[w]) {
        cur[w] = starts[SplitMix(r) % starts.size()];
        continue;
      }
      kind_of[w] = &ks;
      at[w] = b + uint32_t(SplitMix(r) % (e - b));
      __builtin_prefetch(&ks.eng_users[at[w]]);
    }
    for (int w = 0; w < active; ++w) {  // 2. the engager
      if (!live[w]) continue;
      const uint32_t user = kind_of[w]->eng_users[at[w]];
      if (target == Kind::kUser && !(Ref(Kind::kUser, user) == ctx.viewer)) visits.push_back(user);
      live[w] = user + 1 < snap->user_eng_off.size();
      at[w] = user;
      if (live[w]) __builtin_prefetch(&snap->user_eng_off[user]);
    }
    for (int w = 0; w < active; ++w) {  // 3. one of the engager's entities
      if (!live[w]) continue;
      const uint32_t ub = snap->user_eng_off[at[w]], ue = snap->user_eng_off[at[w] + 1];
      live[w] = ub != ue;
      if (!live[w]) continue;
      at[w] = ub + uint32_t(SplitMix(rng[w]) % (ue - ub));
      __builtin_prefetch(&snap->user_eng[at[w]]);
    }
    for (int w = 0; w < active; ++w) {  // 4. step there
      if (!live[w]) continue;
      const Ref next = Ref::FromBits(snap->user_eng[at[w]]);
      if (next.kind() == target) visits.push_back(next.id());
      const KindSnapshot& nk = snap->kind(next.kind());
      if (next.id() + 1 < nk.eng_off.size()) {
        cur[w] = next;
        __builtin_prefetch(&nk.eng_off[next.id()]);
      }
    }
  }
  std::sort(visits.begin(), visits.end());
  // The most visited, within the source budget.
  std::vector<std::pair<uint32_t, uint32_t>> counted;
  for (size_t i = 0; i < visits.size();) {
    size_t j = i;
    while (j < visits.size() && visits[j] == visits[i]) ++j;
    counted.push_back({uint32_t(j - i), visits[i]});
    i = j;
  }
  size_t budget = std::min(counted.size(), size_t(ctx.options->walk_budget));
  std::partial_sort(counted.begin(), counted.begin() + budget, counted.end(),
                    [](auto& a, auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  for (size_t i = 0; i < budget; ++i) out->Add(counted[i].second, kSrcWalk, float(counted[i].first));
}

void PopularSource(const SourceContext& ctx, CandidateSet* out) {
  const Kind target = out->target();
  if (ctx.snapshot) {
    const KindSnapshot& ks = ctx.snapshot->kind(target);
    size_t n = std::min(ks.popular.size(), size_t(ctx.options->popular_budget));
    for (size_t i = 0; i < n; ++i) out->Add(ks.popular[i], kSrcPopular, ks.Popularity(ks.popular[i]));
  }
  for (Ref r : ctx.live->Recent(target, 50)) out->Add(r.id(), kSrcTrending, 1.0f);
}

}  // namespace affinity
