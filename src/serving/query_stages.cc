#include "serving/query_stages.h"

#include <algorithm>

#include "candidates/viewer_embedding.h"
#include "ranking/ranker_inputs.h"

namespace affinity {

absl::StatusOr<std::unique_ptr<ViewerScope>> ResolveViewer(const QueryRequest& req, const ServingOptions& o,
                                                           const EntityRegistry& registry, const LiveState& live,
                                                           const Snapshot* snap, int64_t now_ms) {
  auto v = std::make_unique<ViewerScope>();
  if (auto r = registry.Find(req.viewer_id)) {
    if (r->kind() != Kind::kUser)
      return absl::InvalidArgumentError("viewer_id '" + req.viewer_id + "' is " +
                                        (r->kind() == Kind::kItem ? "an " : "a ") + std::string(KindName(r->kind())) +
                                        ", not a user");
    v->viewer = *r;
  }
  v->state = live.Viewer(v->viewer);
  for (const auto& s : req.seeds)
    if (auto r = registry.Find(s)) v->seeds.push_back(*r);
  for (const auto& e : req.exclude)
    if (auto r = registry.Find(e)) v->excluded.insert(r->bits);
  v->cold_start = v->state->events == 0 && v->seeds.empty();
  SourceContext& ctx = v->ctx;
  ctx.options = &o;
  ctx.registry = &registry;
  ctx.live = &live;
  ctx.snapshot = snap;
  ctx.viewer = v->viewer;
  ctx.state = v->state.get();
  ctx.anchors = BuildAnchors(*v->state, v->seeds, o);
  ctx.now_ms = now_ms;
  ctx.embedding = ViewerEmbedding(ctx);
  ctx.embedding_ready = true;
  return v;
}

namespace {

// Keeps the strongest `max_candidates` by their normalised source scores.
void Trim(size_t max_candidates, CandidateSet* set) {
  if (set->size() <= max_candidates) return;
  std::array<float, kNumSources> max_raw{};
  for (const auto& c : set->items())
    for (int s = 0; s < kNumSources; ++s) max_raw[s] = std::max(max_raw[s], c.raw[s]);
  set->KeepTop(max_candidates, [&](const Candidate& c) {
    float sum = 0;
    for (int s = 0; s < kNumSources; ++s) sum += max_raw[s] > 0 ? c.raw[s] / max_raw[s] : 0.f;
    return sum;
  });
}

}  // namespace

bool PassesLabelFilter(Ref r, const QueryRequest& req, const EntityRegistry& registry) {
  if (req.labels_any.empty() && req.labels_none.empty()) return true;
  auto info = registry.Get(r);
  if (!info) return false;
  auto has = [&](const std::string& label) {
    return std::find(info->labels.begin(), info->labels.end(), label) != info->labels.end();
  };
  if (!req.labels_any.empty() && std::none_of(req.labels_any.begin(), req.labels_any.end(), has)) return false;
  return std::none_of(req.labels_none.begin(), req.labels_none.end(), has);
}

CandidateSet GatherCandidates(const SourceContext& ctx, const QueryRequest& req, const ServingOptions& o,
                              const EntityRegistry& registry, const Deadline& deadline, StageTimer* timer,
                              QueryResponse* resp) {
  CandidateSet set(req.target);
  // Cheapest and most personal first.
  struct Step {
    Stage stage;
    const char* name;
    void (*fn)(const SourceContext&, CandidateSet*);
  };
  const Step steps[] = {{kStageGraph, "graph", &GraphSource},
                        {kStageCoeng, "coengagement", &CoEngagementSource},
                        {kStageAnn, "ann", &AnnSource},
                        {kStageWalk, "walk", &WalkSource}};
  for (const Step& s : steps) {
    if (deadline.Expired()) {
      resp->degraded = true;
      resp->skipped.push_back(s.name);
      continue;
    }
    s.fn(ctx, &set);
    timer->Lap(s.stage, resp);
  }
  PopularSource(ctx, &set);  // always: the fallback that keeps a response full
  if (set.size() < size_t(req.k) + 8) {
    // Before any batch (or for a brand-new catalogue): the newest entities.
    uint32_t n = registry.Count(req.target);
    for (uint32_t i = 0; i < 200 && i < n; ++i) set.Add(n - 1 - i, kSrcPopular, 0.f);
  }
  if (!req.labels_any.empty()) {
    // A label filter may leave the usual sources short of matching entities:
    // the matching ones join as popularity candidates, the most popular first.
    const size_t want = std::max<size_t>(200, size_t(req.k) * 4);
    std::vector<Ref> matching;
    for (const std::string& label : req.labels_any) {
      auto refs = registry.WithLabel(label, req.target, want * 4);
      matching.insert(matching.end(), refs.begin(), refs.end());
    }
    const KindSnapshot* ks = ctx.snapshot ? &ctx.snapshot->kind(req.target) : nullptr;
    auto popularity = [&](Ref r) { return ks ? ks->Popularity(r.id()) : 0.f; };
    std::stable_sort(matching.begin(), matching.end(), [&](Ref a, Ref b) { return popularity(a) > popularity(b); });
    for (size_t i = 0; i < matching.size() && i < want; ++i)
      if (registry.Recommendable(matching[i], ctx.now_ms))
        set.Add(matching[i].id(), kSrcPopular, popularity(matching[i]));
  }
  timer->Lap(kStagePopular, resp);
  for (int s = 0; s < kNumSources; ++s) resp->candidates_per_source[s] = set.CountFrom(Source(s));
  // A candidate the filter would drop never takes one of the max_candidates
  // places: under a label filter the cut is made among the entities it keeps.
  if (!req.labels_any.empty() || !req.labels_none.empty())
    set.RemoveIf([&](const Candidate& c) { return !PassesLabelFilter(c.ref, req, registry); });
  Trim(size_t(o.max_candidates), &set);
  return set;
}

std::vector<Scored> FilterAndOrder(std::vector<Scored> scored, const CandidateSet& set, const ViewerScope& v,
                                   const QueryRequest& req, const EntityRegistry& registry) {
  const auto& items = set.items();
  const bool exclude_engaged = req.exclude_engaged.value_or(req.target == Kind::kItem);
  std::vector<Scored> kept;
  kept.reserve(scored.size());
  for (auto& s : scored) {
    const Candidate& c = items[s.index];
    if (c.ref == v.viewer || v.excluded.count(c.ref.bits) || v.state->Hid(c.ref)) continue;
    if (exclude_engaged && v.state->Engaged(c.ref)) continue;
    if (req.target != Kind::kItem && v.state->Follows(c.ref)) continue;
    if (c.ref.id() >= registry.Count(c.ref.kind())) continue;
    if (!registry.Recommendable(c.ref, v.ctx.now_ms)) continue;  // deleted or expired
    if (!PassesLabelFilter(c.ref, req, registry)) continue;
    kept.push_back(s);
  }
  std::sort(kept.begin(), kept.end(), [&](const Scored& a, const Scored& b) {
    return a.score != b.score ? a.score > b.score : items[a.index].ref < items[b.index].ref;
  });
  return kept;
}

Reranked Rerank(const SourceContext& ctx, const CandidateSet& set, const LearnedRanker* learned, bool want_inputs,
                size_t max_depth, const Deadline& deadline, std::vector<Scored>* kept, QueryResponse* resp) {
  Reranked out;
  out.depth = std::min(kept->size(), max_depth);
  out.input_row.assign(kept->size(), UINT32_MAX);
  const size_t depth = out.depth;
  if (depth == 0 || (!learned && !want_inputs)) return out;
  std::vector<Scored> head(kept->begin(), kept->begin() + long(depth));
  out.inputs.resize(depth * kNumRankInputs);
  AssembleRankerInputs(ctx, set, head, out.inputs.data());
  for (uint32_t i = 0; i < depth; ++i) out.input_row[i] = i;
  if (!learned) return out;
  if (deadline.Expired()) {
    resp->ranker_fallback = true;
    return out;
  }
  auto pred = learned->Predict(out.inputs.data(), depth);
  if (!pred.ok() || pred->size() != depth) {
    resp->ranker_fallback = true;
    return out;
  }
  for (size_t i = 0; i < depth; ++i) (*kept)[i].score = (*pred)[i];
  std::vector<uint32_t> o(depth);
  for (uint32_t i = 0; i < depth; ++i) o[i] = i;
  std::stable_sort(o.begin(), o.end(), [&](uint32_t x, uint32_t y) { return (*kept)[x].score > (*kept)[y].score; });
  std::vector<Scored> reordered(depth);
  for (size_t i = 0; i < depth; ++i) reordered[i] = (*kept)[o[i]], out.input_row[i] = o[i];
  std::copy(reordered.begin(), reordered.end(), kept->begin());
  out.used_learned = true;
  if (DriftMonitor* drift = learned->drift()) {
    // The model's scores of the blend's best rows (its inputs are in the
    // blend's order): the slice its training reference holds (ranking/drift.h).
    drift->Observe(out.inputs.data(), kNumRankInputs, pred->data(), std::min(depth, DriftMonitor::kTopRows));
  }
  resp->model_version = learned->version() + "/" + (resp->snapshot.empty() ? std::string("none") : resp->snapshot);
  return out;
}

std::vector<Pick> Constrain(const std::vector<Scored>& kept, const CandidateSet& set, const Reranked& rr,
                            const QueryRequest& req, const ServingOptions& o, const EntityRegistry& registry,
                            const Snapshot* snap) {
  ConstraintOptions co;
  co.k = req.k;
  co.per_creator_cap =
      req.target == Kind::kItem ? (req.max_per_creator >= 0 ? req.max_per_creator : o.per_creator_cap) : 0;
  co.diversity = req.diversity >= 0 ? req.diversity : o.diversity;
  co.diversity_window = o.diversity_window;
  co.new_creator_share =
      req.target == Kind::kUser ? 0 : (req.new_creator_share >= 0 ? req.new_creator_share : o.new_creator_share);
  const auto& items = set.items();
  const size_t depth = rr.depth;
  std::vector<ConstraintCandidate> cc(kept.size());
  const int dim = snap ? snap->dim : 0;
  const KindSnapshot* creators = snap ? &snap->kind(Kind::kCreator) : nullptr;
  for (size_t i = 0; i < kept.size(); ++i) {
    const Candidate& c = items[kept[i].index];
    cc[i].score = kept[i].score;
    // Below the re-scored head, the blend's order continues under its lowest score.
    if (i >= depth && rr.used_learned) cc[i].score = kept[depth - 1].score - 1.0 - double(i - depth) * 1e-6;
    cc[i].creator = c.ref.kind() == Kind::kItem      ? registry.CreatorOf(c.ref)
                    : c.ref.kind() == Kind::kCreator ? c.ref
                                                     : Ref();
    if (co.new_creator_share > 0 && cc[i].creator.valid()) {
      const DenseId id = cc[i].creator.id();
      const float audience = creators && id < creators->engagers.size() ? creators->engagers[id] : 0.f;
      cc[i].new_creator = audience < float(o.new_creator_max_audience);
    }
    if (co.diversity > 0 && snap) cc[i].embedding = snap->kind(c.ref.kind()).Embedding(c.ref.id(), dim);
  }
  return ApplyConstraints(cc, dim, co);
}

}  // namespace affinity
