#include "serving/query_engine.h"

#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include "base/strings.h"
#include "candidates/sources.h"
#include "ranking/constraints.h"

namespace affinity {

const char* StageName(Stage s) {
  static const char* kNames[kNumStages] = {"state", "graph", "coengagement", "ann", "walk", "popular", "rank"};
  return kNames[s];
}

namespace {

// "q_", then 12 hex digits of the wall-clock millisecond, 4 of this process's
// random tag and 6 of a process-wide counter: unique within a process (the
// counter would have to wrap within one millisecond), and ordered by time, so
// audit records arrive at the store in key order and its compactions move
// files down instead of rewriting them.
std::string NewRequestId(int64_t now_ms) {
  static const uint64_t tag = std::random_device{}() & 0xFFFF;
  static std::atomic<uint64_t> counter{0};
  const uint64_t n = counter.fetch_add(1, std::memory_order_relaxed) & 0xFFFFFF;
  char id[2 + 12 + 4 + 6 + 1];
  std::snprintf(id, sizeof id, "q_%012llx%04llx%06llx", (unsigned long long)(uint64_t(now_ms) & 0xFFFFFFFFFFFFull),
                (unsigned long long)tag, (unsigned long long)n);
  return id;
}

std::string Verb(Action a) {
  switch (a) {
    case Action::kClick: return "clicked";
    case Action::kLike: return "liked";
    case Action::kPlay: return "played";
    case Action::kShare: return "shared";
    case Action::kComment: return "commented on";
    case Action::kFollow: return "follow";
    default: return "engaged with";
  }
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + names[i];
  return out;
}

}  // namespace

QueryEngine::QueryEngine(const ServingOptions& options, const EntityRegistry* registry, const LiveState* live,
                         const SnapshotManager* snapshots, AuditLog* audit, const Clock* clock)
    : options_(options),
      registry_(registry),
      live_(live),
      snapshots_(snapshots),
      audit_(audit),
      clock_(clock),
      ranker_(options) {}

std::string QueryEngine::DisplayName(Ref r) const {
  auto info = registry_->Get(r);
  if (!info) return "?";
  if (!info->attributes.empty() && info->attributes.find("\"name\"") != std::string::npos) {
    thread_local simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (!parser.parse(info->attributes).get(doc)) {
      std::string_view name;
      if (!doc["name"].get(name)) return std::string(name);
    }
  }
  return info->ext_id;
}

absl::StatusOr<QueryResponse> QueryEngine::Query(const QueryRequest& request) const {
  auto snap = snapshots_ ? snapshots_->Get() : nullptr;
  return QueryWith(request, snap.get());
}

absl::StatusOr<QueryResponse> QueryEngine::QueryWith(const QueryRequest& req, const Snapshot* snap) const {
  if (req.viewer_id.empty()) return absl::InvalidArgumentError("viewer_id is required");
  if (req.k < 1 || req.k > 500) return absl::InvalidArgumentError("k must be between 1 and 500");
  const int64_t t_start = clock_->MonotonicMicros();
  int64_t t_stage = t_start;
  Deadline deadline(clock_, int64_t(req.deadline_ms > 0 ? req.deadline_ms : options_.deadline_ms) * 1000);
  QueryResponse resp;
  resp.request_id = NewRequestId(clock_->NowMillis());
  resp.snapshot = snap ? snap->version : "";
  resp.model_version = ranker_.version() + "/" + (snap ? snap->version : std::string("none"));
  auto lap = [&](Stage s) {
    int64_t now = clock_->MonotonicMicros();
    resp.stage_micros[s] += now - t_stage;
    t_stage = now;
  };

  // Viewer and its live state.
  Ref viewer;
  if (auto r = registry_->Find(req.viewer_id)) {
    if (r->kind() != Kind::kUser)
      return absl::InvalidArgumentError("viewer_id '" + req.viewer_id + "' is a " + std::string(KindName(r->kind())) +
                                        ", not a user");
    viewer = *r;
  }
  auto state = live_->Viewer(viewer);
  std::vector<Ref> seeds;
  for (const auto& s : req.seeds)
    if (auto r = registry_->Find(s)) seeds.push_back(*r);
  std::unordered_set<uint32_t> excluded;
  for (const auto& e : req.exclude)
    if (auto r = registry_->Find(e)) excluded.insert(r->bits);
  resp.cold_start = state->events == 0 && seeds.empty();

  SourceContext ctx;
  ctx.options = &options_;
  ctx.registry = registry_;
  ctx.live = live_;
  ctx.snapshot = snap;
  ctx.viewer = viewer;
  ctx.state = state.get();
  ctx.anchors = BuildAnchors(*state, seeds, size_t(options_.max_anchors), options_.anchor_half_life_hours,
                             float(options_.anchor_older_share), float(options_.anchor_step_decay),
                             float(options_.anchor_min_weight));
  ctx.now_ms = clock_->NowMillis();
  ctx.embedding = ViewerEmbedding(ctx);
  ctx.embedding_ready = true;
  lap(kStageState);

  // Candidate sources, cheapest and most personal first, under the deadline.
  CandidateSet set(req.target);
  struct Step { Stage stage; const char* name; void (*fn)(const SourceContext&, CandidateSet*); };
  const Step steps[] = {{kStageGraph, "graph", &GraphSource},
                        {kStageCoeng, "coengagement", &CoEngagementSource},
                        {kStageAnn, "ann", &AnnSource},
                        {kStageWalk, "walk", &WalkSource}};
  for (const Step& s : steps) {
    if (deadline.Expired()) {
      resp.degraded = true;
      resp.skipped.push_back(s.name);
      continue;
    }
    s.fn(ctx, &set);
    lap(s.stage);
  }
  PopularSource(ctx, &set);  // always: the fallback that keeps a response full
  if (set.size() < size_t(req.k) + 8) {
    // Before any batch (or for a brand-new catalogue): the newest entities.
    uint32_t n = registry_->Count(req.target);
    for (uint32_t i = 0; i < 200 && i < n; ++i) set.Add(n - 1 - i, kSrcPopular, 0.f);
  }
  lap(kStagePopular);
  for (int s = 0; s < kNumSources; ++s) resp.candidates_per_source[s] = set.CountFrom(Source(s));
  if (set.size() > size_t(options_.max_candidates)) {
    // Keep the strongest by their normalised source scores before full scoring.
    std::array<float, kNumSources> max_raw{};
    for (const auto& c : set.items())
      for (int s = 0; s < kNumSources; ++s) max_raw[s] = std::max(max_raw[s], c.raw[s]);
    set.KeepTop(size_t(options_.max_candidates), [&](const Candidate& c) {
      float sum = 0;
      for (int s = 0; s < kNumSources; ++s) sum += max_raw[s] > 0 ? c.raw[s] / max_raw[s] : 0.f;
      return sum;
    });
  }

  // Filter, score, order.
  const auto& items = set.items();
  std::vector<Scored> scored = ranker_.Score(ctx, set);
  std::vector<Scored> kept;
  kept.reserve(scored.size());
  for (auto& s : scored) {
    const Candidate& c = items[s.index];
    if (c.ref == viewer || excluded.count(c.ref.bits) || state->Hid(c.ref)) continue;
    if (req.exclude_engaged && state->Engaged(c.ref)) continue;
    if (req.target != Kind::kItem && state->Follows(c.ref)) continue;
    if (c.ref.id() >= registry_->Count(c.ref.kind())) continue;
    kept.push_back(s);
  }
  // Order by the blend. The learned ranker re-scores the blend's best
  // `rerank_depth` in one batch (a cascade: the rest keep the blend's order
  // below them); on error or an expired deadline the blend's order stands and
  // the response says so.
  std::sort(kept.begin(), kept.end(), [&](const Scored& a, const Scored& b) {
    return a.score != b.score ? a.score > b.score : items[a.index].ref < items[b.index].ref;
  });
  std::shared_ptr<const LearnedRanker> learned = req.ranker == "off" ? nullptr : learned_.load();
  const size_t depth = std::min(kept.size(), size_t(options_.rerank_depth));
  std::vector<float> inputs;
  std::vector<Scored> head;
  bool use_learned = false;
  // Inputs are also logged with the audit record: they are the point-in-time
  // features `affinity batch` trains on once feedback names this request.
  const bool log_inputs = req.audit && audit_ && options_.log_ranker_inputs_share > 0 &&
                          (options_.log_ranker_inputs_share >= 1 ||
                           double(std::hash<std::string>()(resp.request_id) % 10000) < options_.log_ranker_inputs_share * 10000);
  if ((learned || req.want_inputs || log_inputs) && depth > 0) {
    head.assign(kept.begin(), kept.begin() + long(depth));
    inputs.resize(depth * LearnedRanker::kNumInputs);
    LearnedRanker::Inputs(ctx, set, head, inputs.data());
  }
  std::vector<uint32_t> input_row(kept.size(), UINT32_MAX);  // kept position -> inputs row
  for (uint32_t i = 0; i < depth && !inputs.empty(); ++i) input_row[i] = i;
  if (learned && depth > 0) {
    if (deadline.Expired()) {
      resp.ranker_fallback = true;
    } else if (auto pred = learned->Predict(inputs.data(), depth); pred.ok() && pred->size() == depth) {
      for (size_t i = 0; i < depth; ++i) kept[i].score = (*pred)[i];
      std::vector<uint32_t> o(depth);
      for (uint32_t i = 0; i < depth; ++i) o[i] = i;
      std::stable_sort(o.begin(), o.end(), [&](uint32_t x, uint32_t y) { return kept[x].score > kept[y].score; });
      std::vector<Scored> reordered(depth);
      for (size_t i = 0; i < depth; ++i) reordered[i] = kept[o[i]], input_row[i] = o[i];
      std::copy(reordered.begin(), reordered.end(), kept.begin());
      use_learned = true;
      resp.model_version = learned->version() + "/" + (snap ? snap->version : std::string("none"));
    } else {
      resp.ranker_fallback = true;
    }
  }
  // Constraints: per-creator cap, MMR diversity, new-creator exposure floor.
  ConstraintOptions co;
  co.k = req.k;
  co.per_creator_cap = req.target == Kind::kItem ? (req.max_per_creator >= 0 ? req.max_per_creator : options_.per_creator_cap) : 0;
  co.diversity = req.diversity >= 0 ? req.diversity : options_.diversity;
  co.diversity_window = options_.diversity_window;
  co.new_creator_share = req.target == Kind::kUser ? 0 : (req.new_creator_share >= 0 ? req.new_creator_share : options_.new_creator_share);
  std::vector<ConstraintCandidate> cc(kept.size());
  const int dim = snap ? snap->dim : 0;
  const KindSnapshot* creators = snap ? &snap->kind(Kind::kCreator) : nullptr;
  for (size_t i = 0; i < kept.size(); ++i) {
    const Candidate& c = items[kept[i].index];
    cc[i].score = kept[i].score;
    if (i >= depth && use_learned) cc[i].score = kept[depth - 1].score - 1.0 - double(i - depth) * 1e-6;
    cc[i].creator = c.ref.kind() == Kind::kItem ? registry_->CreatorOf(c.ref) : c.ref.kind() == Kind::kCreator ? c.ref : Ref();
    if (co.new_creator_share > 0 && cc[i].creator.valid()) {
      const DenseId id = cc[i].creator.id();
      const float audience = creators && id < creators->engagers.size() ? creators->engagers[id] : 0.f;
      cc[i].new_creator = audience < float(options_.new_creator_max_audience);
    }
    if (co.diversity > 0 && snap) cc[i].embedding = snap->kind(c.ref.kind()).Embedding(c.ref.id(), dim);
  }
  for (const Pick& p : ApplyConstraints(cc, dim, co)) {
    const Scored& s = kept[p.index];
    const Candidate& c = items[s.index];
    QueryResult r;
    r.ref = c.ref;
    r.entity_id = registry_->ExtId(c.ref);
    r.score = s.score;
    r.sources = c.sources;
    r.value = s.value;
    r.contribution = s.contribution;
    r.learned = use_learned && p.index < depth;
    r.floor = p.floor;
    const uint32_t row = input_row[p.index];
    if (row != UINT32_MAX)
      r.inputs.assign(inputs.begin() + size_t(row) * LearnedRanker::kNumInputs,
                      inputs.begin() + size_t(row + 1) * LearnedRanker::kNumInputs);
    if (req.explain != ExplainMode::kNone) {
      r.reason = Reason(resp, r, c);
      if (r.floor) r.reason += "; shown to give new creators a share of recommendations";
    }
    resp.results.push_back(std::move(r));
  }
  if (use_learned && req.explain != ExplainMode::kNone && !resp.results.empty()) {
    // Attributions for the returned results the model scored, in one batch.
    std::vector<float> x;
    std::vector<size_t> which;
    for (size_t i = 0; i < resp.results.size(); ++i)
      if (resp.results[i].learned) {
        x.insert(x.end(), resp.results[i].inputs.begin(), resp.results[i].inputs.end());
        which.push_back(i);
      }
    // explain:"full" asks for every contribution: exact TreeSHAP; the short form
    // uses the configured method (path attributions by default: cheaper, also additive).
    const std::string method = req.explain == ExplainMode::kFull ? "treeshap" : options_.attribution_method;
    auto contrib = learned->Contributions(x.data(), which.size(), method);
    const size_t width = LearnedRanker::kNumInputs + 1;
    const float scale = float(learned->margin_scale());
    if (!which.empty() && contrib.ok() && contrib->size() == which.size() * width) {
      resp.attribution_method = method;
      for (size_t j = 0; j < which.size(); ++j) {
        const size_t i = j;
        auto& r = resp.results[which[j]];
        r.input_contrib.assign(contrib->begin() + i * width, contrib->begin() + i * width + LearnedRanker::kNumInputs);
        r.base = (*contrib)[i * width + LearnedRanker::kNumInputs];
        // The bias holds the row's base margin (scale x blend score); hand that
        // margin back to the blend features it is made of (exact, linear), so
        // the base is the model's constant and every input carries its share.
        r.base -= scale * r.inputs[kInBlendScore];
        for (int f = 0; f < kNumFeatures; ++f) r.input_contrib[kInBlendFeatures + f] += scale * r.contribution[f];
      }
    }
  }
  lap(kStageRank);

  if (req.audit && audit_) {
    JsonWriter w;
    w.BeginObject();
    w.Key("request_id").String(resp.request_id);
    w.Key("ts").Int(clock_->NowMillis());
    w.Key("viewer_id").String(req.viewer_id);
    w.Key("target").String(std::string(KindName(req.target)) + "s");
    w.Key("k").Int(req.k);
    w.Key("context").Raw(req.context.empty() ? "null" : req.context);
    w.Key("response");
    WriteJson(resp, ExplainMode::kFull, w, /*with_inputs=*/log_inputs, /*audit_form=*/true);
    w.EndObject();
    audit_->Record(resp.request_id, w.Release());
  }
  return resp;
}

std::string QueryEngine::Reason(const QueryResponse& resp, const QueryResult& r, const Candidate& c) const {
  // The strongest positive contribution decides the reason; social proof, when
  // there is any, is added to it.
  int best = -1;
  for (int f = 0; f < kNumFeatures; ++f)
    if (r.contribution[f] > 0 && (best < 0 || r.contribution[f] > r.contribution[best])) best = f;
  const std::string kind = std::string(KindName(c.ref.kind()));
  std::string social;
  if (c.via_creator.valid()) {
    social = "new from " + DisplayName(c.via_creator) + ", whom you follow";
  } else if (c.n_proof > 0) {
    std::vector<std::string> names;
    for (int i = 0; i < c.n_proof; ++i) names.push_back(DisplayName(c.proof[i]));
    int n = std::max<int>(c.common, c.n_proof);
    std::string who = std::to_string(n) + (n == 1 ? " person" : " people") + " you follow: " + JoinNames(names);
    social = (c.ref.kind() == Kind::kItem ? "engaged with by " : "followed by ") + who;
  }
  std::string primary;
  switch (best) {
    case kFeatSocialGraph:
      return social.empty() ? "close to you in the follow graph" : social;
    case kFeatCoEngagement:
      if (!c.via.valid()) {
        primary = "often engaged with together with what you like";
      } else if (c.via_seed) {
        primary = "similar to " + DisplayName(c.via);
      } else if (c.via == c.ref) {
        primary = "you engage with it";
      } else if (c.via_action == Action::kFollow) {
        primary = "often followed together with " + DisplayName(c.via) + ", whom you follow";
      } else if (c.via.kind() == Kind::kItem && c.ref.kind() == Kind::kCreator && registry_->CreatorOf(c.via) == c.ref) {
        primary = "creator of " + DisplayName(c.via) + ", which you " + Verb(c.via_action);
      } else {
        primary = "because you " + Verb(c.via_action) + " " + DisplayName(c.via);
      }
      break;
    case kFeatEmbedding:
      primary = "matches your taste profile";
      break;
    case kFeatRandomWalk:
      primary = "people who engage with what you do also engage with this " + kind;
      break;
    case kFeatCreatorAffinity: {
      Ref creator = registry_->CreatorOf(c.ref);
      primary = "you often engage with " + (creator.valid() ? DisplayName(creator) : std::string("its creator"));
      break;
    }
    case kFeatTrending:
      primary = "trending right now";
      break;
    case kFeatPopularity:
      primary = resp.cold_start ? "popular with everyone (we are still learning your taste)" : "popular lately";
      break;
    default:
      primary = "new on affinity";
  }
  return social.empty() ? primary : primary + "; " + social;
}

namespace {

void CopyExpanding(simdjson::dom::element e, JsonWriter& w) {
  if (e.type() == simdjson::dom::element_type::ARRAY) {
    w.BeginArray();
    for (auto v : simdjson::dom::array(e)) CopyExpanding(v, w);
    w.EndArray();
    return;
  }
  if (e.type() != simdjson::dom::element_type::OBJECT) {
    w.Raw(simdjson::minify(e));
    return;
  }
  simdjson::dom::object o(e);
  // A compact explanation: its attributions and input values as float32 rows,
  // named by the learned ranker's inputs or (method linear-exact) the blend's features.
  std::string_view a, x, method;
  std::vector<float> contrib, inputs;
  const bool blend = !o["method"].get(method) && method == "linear-exact";
  const size_t width = blend ? size_t(kNumFeatures) : size_t(LearnedRanker::kNumInputs);
  const bool compact = !o["attributions_f32"].get(a) && !o["inputs_f32"].get(x) && DecodeFloats(a, &contrib) &&
                       DecodeFloats(x, &inputs) && contrib.size() == width && inputs.size() == width;
  w.BeginObject();
  for (auto field : o) {
    if (compact && (field.key == "top_features" || field.key == "attributions_f32" || field.key == "inputs_f32"))
      continue;
    w.Key(field.key);
    CopyExpanding(field.value, w);
  }
  if (compact) {
    auto name = [&](size_t f) -> std::string_view {
      return blend ? FeatureName(Feature(f)) : std::string_view(LearnedRanker::InputNames()[f]);
    };
    std::vector<size_t> idx(width);
    std::iota(idx.begin(), idx.end(), size_t(0));
    std::stable_sort(idx.begin(), idx.end(), [&](size_t p, size_t q) { return std::fabs(contrib[p]) > std::fabs(contrib[q]); });
    w.Key("top_features").BeginArray();
    for (size_t f : idx)
      w.BeginObject().Key("name").String(name(f)).Key("value").Double(inputs[f]).Key("contribution").Double(contrib[f]).EndObject();
    w.EndArray();
  }
  w.EndObject();
}

}  // namespace

absl::StatusOr<std::string> ExpandAuditRecord(std::string_view stored) {
  if (stored.find("\"attributions_f32\"") == std::string_view::npos) return std::string(stored);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(stored.data(), stored.size()).get(doc)) return absl::DataLossError("the audit record is not valid JSON");
  JsonWriter w;
  CopyExpanding(doc, w);
  return w.Release();
}

void QueryEngine::WriteJson(const QueryResponse& resp, ExplainMode explain, JsonWriter& w, bool with_inputs,
                            bool audit_form) const {
  w.BeginObject();
  w.Key("request_id").String(resp.request_id);
  w.Key("model_version").String(resp.model_version);
  w.Key("experiment").Null();
  w.Key("cold_start").Bool(resp.cold_start);
  w.Key("degraded").Bool(resp.degraded);
  if (resp.ranker_fallback) w.Key("ranker_fallback").Bool(true);
  if (!resp.skipped.empty()) {
    w.Key("skipped_sources").BeginArray();
    for (const auto& s : resp.skipped) w.String(s);
    w.EndArray();
  }
  w.Key("results").BeginArray();
  for (const QueryResult& r : resp.results) {
    w.BeginObject();
    w.Key("entity_id").String(r.entity_id);
    w.Key("score").Double(r.score);
    w.Key("sources").BeginArray();
    for (int s = 0; s < kNumSources; ++s)
      if ((r.sources >> s) & 1) w.String(SourceName(Source(s)));
    w.EndArray();
    if (r.floor) w.Key("placed_by").String("new_creator_floor");
    if (with_inputs && r.inputs.size() == size_t(LearnedRanker::kNumInputs)) {
      // Compact and exact: the float32 values, little-endian, base64.
      w.Key("ranker_inputs_f32").String(LearnedRanker::EncodeRow(r.inputs));
    }
    if (explain != ExplainMode::kNone && r.learned && r.input_contrib.size() == size_t(LearnedRanker::kNumInputs)) {
      const auto& names = LearnedRanker::InputNames();
      w.Key("explanation").BeginObject();
      w.Key("reason").String(r.reason);
      w.Key("method").String(resp.attribution_method);
      std::vector<int> idx(LearnedRanker::kNumInputs);
      for (int f = 0; f < LearnedRanker::kNumInputs; ++f) idx[f] = f;
      std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) {
        return std::fabs(r.input_contrib[a]) > std::fabs(r.input_contrib[b]);
      });
      if (explain == ExplainMode::kFull) w.Key("base").Double(r.base).Key("raw_score").Double(r.score);
      w.Key("top_features").BeginArray();
      int shown = 0;
      const bool top_only = explain == ExplainMode::kTop || audit_form;
      for (int f : idx) {
        if (top_only && (shown >= 3 || r.input_contrib[f] == 0)) break;
        w.BeginObject().Key("name").String(names[f]).Key("value").Double(r.inputs[f]);
        w.Key("contribution").Double(r.input_contrib[f]).EndObject();
        ++shown;
      }
      w.EndArray();
      if (audit_form && r.inputs.size() == size_t(LearnedRanker::kNumInputs)) {
        w.Key("attributions_f32").String(EncodeFloats(r.input_contrib.data(), r.input_contrib.size()));
        w.Key("inputs_f32").String(EncodeFloats(r.inputs.data(), r.inputs.size()));
      }
      w.EndObject();
    } else if (explain != ExplainMode::kNone) {
      w.Key("explanation").BeginObject();
      w.Key("reason").String(r.reason);
      w.Key("method").String("linear-exact");
      std::array<int, kNumFeatures> order;
      for (int f = 0; f < kNumFeatures; ++f) order[f] = f;
      std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
        return std::fabs(r.contribution[a]) > std::fabs(r.contribution[b]);
      });
      if (explain == ExplainMode::kFull) w.Key("base").Double(0.0).Key("raw_score").Double(r.score);
      w.Key("top_features").BeginArray();
      int shown = 0;
      const bool top_only = explain == ExplainMode::kTop || audit_form;
      for (int f : order) {
        if (top_only && (shown >= 3 || r.contribution[f] == 0)) break;
        w.BeginObject();
        w.Key("name").String(FeatureName(Feature(f)));
        w.Key("value").Double(r.value[f]);
        w.Key("contribution").Double(r.contribution[f]);
        w.EndObject();
        ++shown;
      }
      w.EndArray();
      if (audit_form) {
        w.Key("attributions_f32").String(EncodeFloats(r.contribution.data(), r.contribution.size()));
        w.Key("inputs_f32").String(EncodeFloats(r.value.data(), r.value.size()));
      }
      w.EndObject();
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

}  // namespace affinity
