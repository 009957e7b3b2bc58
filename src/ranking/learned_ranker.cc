#include "ranking/learned_ranker.h"

#include <simdjson.h>
#include <xgboost/c_api.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/json_writer.h"
#include "base/status.h"
#include "base/strings.h"

namespace affinity {
namespace {

absl::Status XgbError(const char* what) {
  return absl::InternalError(std::string("xgboost ") + what + ": " + XGBGetLastError());
}

// Owns a DMatrix handle.
struct DMatrix {
  DMatrixHandle h = nullptr;
  ~DMatrix() {
    if (h) XGDMatrixFree(h);
  }
};

constexpr float kAbsentRank = 1000.f;

absl::Status SetParams(BoosterHandle b, const LearnedRankerOptions& o, int threads) {
  const std::pair<const char*, std::string> params[] = {
      {"objective", o.objective},
      {"eval_metric", "ndcg@20"},
      {"eta", std::to_string(o.eta)},
      {"max_depth", std::to_string(o.max_depth)},
      {"tree_method", "hist"},
      {"nthread", std::to_string(threads > 0 ? threads : 2)},
      {"min_child_weight", std::to_string(o.min_child_weight)},
      {"subsample", std::to_string(o.subsample)},
      {"colsample_bynode", std::to_string(o.colsample_bynode)},
      {"seed", "7"},
      {"num_pairsample", std::to_string(o.pair_samples)}};
  for (const auto& [k, v] : params)
    if (XGBoosterSetParam(b, k, v.c_str()) != 0) return XgbError("param");
  if (o.monotone) {
    std::vector<int> c(kNumRankInputs, 0);
    for (int in : {kInBlendScore, kInCoengRecent, kInNewestCosine, kInRecentCosine, kInRecentCosineMax, kInCoengNewest,
                   kInCoengNewest3, kInCoengRecent20, kInCoengRecent20Support, kInSessionNewest, kInSessionRecent,
                   kInSessionSupport, kInSessionReverse})
      c[in] = 1;
    for (int in : {kInCoengBestRecency, kInCoengNearestRecency, kInBlendRank}) c[in] = -1;
    const std::string v = absl::StrCat("(", absl::StrJoin(c, ","), ")");
    if (XGBoosterSetParam(b, "monotone_constraints", v.c_str()) != 0) return XgbError("param");
  }
  return absl::OkStatus();
}

}  // namespace

const std::vector<std::string>& LearnedRanker::InputNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n(kNumInputs);
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
    return n;
  }();
  return names;
}

void LearnedRanker::Inputs(const SourceContext& ctx, const CandidateSet& set, const std::vector<Scored>& rows,
                           float* out) {
  const auto& items = set.items();
  const size_t n = rows.size();
  // Rank of each row within each source's list (by raw score, among these rows).
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
  const auto& creator_hits = ctx.RecentCreators();
  const Snapshot* snap = ctx.snapshot;
  const bool fresh = snap && snap->GroupFresh(kGroupEntityEmbedding, ctx.now_ms) &&
                     snap->GroupFresh(kGroupPopularity, ctx.now_ms);
  const std::vector<float>& emb = ctx.embedding;
  const int dim = snap ? snap->dim : 0;
  const float activity = std::log1p(float(ctx.state->engaged.size()));
  const float follows = std::log1p(float(ctx.state->follows.size()));
  const int64_t live_now = std::max(ctx.live->last_event_ts(), ctx.now_ms);
  // Unit factors of the viewer's newest interactions (sequence-aware: where the
  // viewer is now, which the whole-history viewer factor blurs), per kind.
  constexpr uint32_t kRecentMean = 5, kRecentMax = 10;
  struct RecentFactor {
    Kind kind;
    uint32_t recency;
    const float* y;
    float inv_norm;
  };
  std::vector<RecentFactor> recent;
  std::vector<float> recent_mean[kNumKinds];
  if (snap && dim > 0)
    for (const Anchor& a : ctx.anchors) {
      if (a.seed || a.recency >= kRecentMax) continue;
      const float* y = snap->kind(a.ref.kind()).Embedding(a.ref.id(), dim);
      if (!y) continue;
      float nn = 0;
      for (int d = 0; d < dim; ++d) nn += y[d] * y[d];
      if (nn <= 0) continue;
      recent.push_back({a.ref.kind(), a.recency, y, 1.f / std::sqrt(nn)});
      if (a.recency >= kRecentMean) continue;
      auto& m = recent_mean[int(a.ref.kind())];
      m.resize(size_t(dim), 0.f);
      for (int d = 0; d < dim; ++d) m[d] += y[d] * recent.back().inv_norm;
    }
  // Co-engagement and session co-engagement of each row with each of the
  // viewer's 20 newest interactions, read from the anchors' lists (the blend sees
  // only their weighted sum); then the other direction: each row's own lists read
  // against the viewer's history. Those lists rank neighbours by their share of
  // the row's engagers, so a niche row tied to what the viewer did shows there
  // even when it is far down the anchors' own lists.
  constexpr uint32_t kRecentLinks = 20;
  std::vector<float> link_newest(n, 0.f), link_newest3(n, 0.f), link_sum(n, 0.f), link_count(n, 0.f), link_nearest(n, kAbsentRank);
  std::vector<float> session_newest(n, 0.f), session_recent(n, 0.f), session_support(n, 0.f);
  std::vector<float> rev_sum(n, 0.f), rev_recent(n, 0.f), rev_support(n, 0.f), srev(n, 0.f), srev_support(n, 0.f);
  if (snap) {
    const Kind target = set.target();
    const KindSnapshot& ks = snap->kind(target);
    // Entries [begin, end) of a CSR row; empty for ids the snapshot has no row for.
    auto row_range = [](const std::vector<uint32_t>& off, DenseId id) {
      return id + 1 < off.size() ? std::pair(off[id], off[id + 1]) : std::pair(0u, 0u);
    };
    std::unordered_map<DenseId, uint32_t> row_of;
    row_of.reserve(n * 2);
    for (size_t i = 0; i < n; ++i) row_of.emplace(items[rows[i].index].ref.id(), uint32_t(i));
    // The viewer's history as a bitmap over the snapshot's dense ids (list
    // entries never name a newer entity): one bit test per list entry.
    std::vector<uint64_t> has((size_t(ks.count) + 63) / 64, 0);
    auto mark = [&](DenseId id) {
      if (id < ks.count) has[id >> 6] |= uint64_t(1) << (id & 63);
    };
    auto engaged = [&](DenseId id) { return id < ks.count && ((has[id >> 6] >> (id & 63)) & 1); };
    for (Ref r : ctx.state->engaged)
      if (r.kind() == target) mark(r.id());
    std::unordered_map<DenseId, float> anchor_shrink;  // 0.8 per newer interaction
    anchor_shrink.reserve(ctx.anchors.size() * 2);
    for (const Anchor& a : ctx.anchors) {
      if (a.seed || a.ref.kind() != target || a.recency == UINT32_MAX) continue;
      const float shrink = std::pow(0.8f, float(a.recency));
      anchor_shrink.emplace(a.ref.id(), shrink);
      mark(a.ref.id());
      if (a.recency >= kRecentLinks) continue;
      for (auto [p, end] = row_range(ks.nb_off, a.ref.id()); p < end; ++p) {
        auto it = row_of.find(ks.nb_ids[p]);
        if (it == row_of.end()) continue;
        const uint32_t r = it->second;
        if (a.recency == 0) link_newest[r] += ks.nb_w[p];
        if (a.recency < 3) link_newest3[r] += ks.nb_w[p];
        link_sum[r] += ks.nb_w[p];
        link_count[r] += 1.f;
        link_nearest[r] = std::min(link_nearest[r], float(a.recency));
      }
      for (auto [p, end] = row_range(ks.seq_off, a.ref.id()); p < end; ++p) {
        auto it = row_of.find(ks.seq_ids[p]);
        if (it == row_of.end()) continue;
        const uint32_t r = it->second;
        if (a.recency == 0) session_newest[r] += ks.seq_w[p];
        session_recent[r] += ks.seq_w[p] * shrink;
        session_support[r] += 1.f;
      }
    }
    for (size_t i = 0; i < n; ++i) {
      const DenseId id = items[rows[i].index].ref.id();
      for (auto [p, end] = row_range(ks.nb_off, id); p < end; ++p) {
        if (!engaged(ks.nb_ids[p])) continue;
        rev_support[i] += 1.f;
        if (auto it = anchor_shrink.find(ks.nb_ids[p]); it != anchor_shrink.end()) {
          rev_sum[i] += ks.nb_w[p];
          rev_recent[i] += ks.nb_w[p] * it->second;
        }
      }
      for (auto [p, end] = row_range(ks.seq_off, id); p < end; ++p) {
        if (!engaged(ks.seq_ids[p])) continue;
        srev_support[i] += 1.f;
        if (auto it = anchor_shrink.find(ks.seq_ids[p]); it != anchor_shrink.end()) srev[i] += ks.seq_w[p] * it->second;
      }
    }
  }
  for (size_t i = 0; i < n; ++i) {
    const Scored& sc = rows[i];
    const Candidate& c = items[sc.index];
    float* x = out + i * kNumInputs;
    for (int f = 0; f < kNumFeatures; ++f) x[kInBlendFeatures + f] = sc.value[f];
    x[kInBlendScore] = float(sc.score);
    for (int s = 0; s < kNumSources; ++s) {
      x[kInSourceScore + s] = c.raw[s];
      x[kInSourceRank + s] = rank[i * kNumSources + s];
    }
    float dot = 0, engagers = 0;
    bool in_snapshot = false;
    if (snap) {
      const KindSnapshot& ks = snap->kind(c.ref.kind());
      in_snapshot = c.ref.id() < ks.count;
      if (c.ref.id() < ks.engagers.size()) engagers = ks.engagers[c.ref.id()];
      if (const float* y = ks.Embedding(c.ref.id(), dim); y && int(emb.size()) == dim)
        for (int d = 0; d < dim; ++d) dot += emb[d] * y[d];
    }
    x[kInEmbeddingDot] = fresh ? dot : 0.f;
    float cos_mean = 0, cos_max = 0, cos_newest = 0;
    if (snap && fresh) {
      const Kind kind = c.ref.kind();
      if (const float* y = snap->kind(kind).Embedding(c.ref.id(), dim)) {
        float nn = 0;
        for (int d = 0; d < dim; ++d) nn += y[d] * y[d];
        const float inv = nn > 0 ? 1.f / std::sqrt(nn) : 0.f;
        const auto& m = recent_mean[int(kind)];
        if (!m.empty()) {
          float dm = 0, mm = 0;
          for (int d = 0; d < dim; ++d) dm += m[d] * y[d], mm += m[d] * m[d];
          cos_mean = mm > 0 ? dm * inv / std::sqrt(mm) : 0.f;
        }
        for (const RecentFactor& r : recent) {
          if (r.kind != kind) continue;
          float dd = 0;
          for (int d = 0; d < dim; ++d) dd += r.y[d] * y[d];
          cos_max = std::max(cos_max, dd * inv * r.inv_norm);
          if (r.recency == 0) cos_newest = dd * inv * r.inv_norm;
        }
      }
    }
    x[kInNewestCosine] = cos_newest;
    x[kInRecentCosine] = cos_mean;
    x[kInRecentCosineMax] = cos_max;
    x[kInBlendRank] = float(i);
    x[kInCoengReverse] = rev_sum[i];
    x[kInCoengReverseRecent] = rev_recent[i];
    x[kInCoengReverseSupport] = rev_support[i];
    x[kInSessionNewest] = session_newest[i];
    x[kInSessionRecent] = session_recent[i];
    x[kInSessionSupport] = session_support[i];
    x[kInSessionReverse] = srev[i];
    x[kInSessionReverseSupport] = srev_support[i];
    x[kInCoengNewest] = link_newest[i];
    x[kInCoengNewest3] = link_newest3[i];
    x[kInCoengRecent20] = link_sum[i];
    x[kInCoengRecent20Support] = link_count[i];
    x[kInCoengNearestRecency] = link_nearest[i];
    x[kInCoengSupport] = float(c.support);
    x[kInCoengBest] = c.via_weight;
    x[kInCoengRecent] = c.coeng_recent;
    x[kInCoengBestRecency] = float(c.via_recency);
    x[kInCommonNeighbours] = float(c.common);
    Ref creator = c.ref.kind() == Kind::kItem ? ctx.registry->CreatorOf(c.ref) : Ref();
    auto ch = creator.valid() ? creator_hits.find(creator.bits) : creator_hits.end();
    x[kInCreatorRecent] = ch == creator_hits.end() ? 0.f : float(ch->second);
    x[kInLogEngagers] = std::log1p(engagers);
    x[kInLogFollowers] = std::log1p(float(ctx.live->Followers(c.ref)));
    x[kInViewerActivity] = activity;
    x[kInViewerAnchors] = float(ctx.anchors.size());
    x[kInViewerFollows] = follows;
    const int64_t first = ctx.live->FirstEngagedMs(c.ref), last = ctx.live->LastEngagedMs(c.ref);
    x[kInAgeHours] = first > 0 ? float(std::max<int64_t>(0, live_now - first)) / 3.6e6f : -1.f;
    x[kInHoursSinceEngaged] = last > 0 ? float(std::max<int64_t>(0, live_now - last)) / 3.6e6f : -1.f;
    x[kInFeaturesFresh] = fresh ? 1.f : 0.f;
    x[kInNewerThanSnapshot] = in_snapshot ? 0.f : 1.f;
  }
}

std::string LearnedRanker::EncodeRow(const std::vector<float>& row) { return EncodeFloats(row.data(), row.size()); }

bool LearnedRanker::DecodeRow(std::string_view base64, std::vector<float>* row) {
  return DecodeFloats(base64, row) && row->size() == size_t(kNumInputs);
}

absl::StatusOr<std::unique_ptr<LearnedRanker>> LearnedRanker::Train(const std::vector<float>& inputs,
                                                                    const std::vector<float>& labels,
                                                                    const std::vector<unsigned>& groups,
                                                                    const LearnedRankerOptions& o) {
  const size_t rows = labels.size();
  if (rows == 0 || inputs.size() != rows * kNumInputs) return absl::InvalidArgumentError("ranker: no training rows");
  if (size_t(std::accumulate(groups.begin(), groups.end(), uint64_t(0))) != rows)
    return absl::InvalidArgumentError("ranker: group sizes do not add up to the rows");
  DMatrix m;
  if (XGDMatrixCreateFromMat_omp(inputs.data(), rows, kNumInputs, NAN, &m.h, o.threads > 0 ? o.threads : 2) != 0) return XgbError("DMatrix");
  if (XGDMatrixSetFloatInfo(m.h, "label", labels.data(), rows) != 0) return XgbError("labels");
  if (XGDMatrixSetUIntInfo(m.h, "group", groups.data(), groups.size()) != 0) return XgbError("groups");
  if (o.margin_scale != 0) {
    std::vector<float> margin(rows);
    for (size_t i = 0; i < rows; ++i) margin[i] = float(o.margin_scale) * inputs[i * kNumInputs + kInBlendScore];
    if (XGDMatrixSetFloatInfo(m.h, "base_margin", margin.data(), rows) != 0) return XgbError("base margin");
  }
  BoosterHandle b = nullptr;
  if (XGBoosterCreate(&m.h, 1, &b) != 0) return XgbError("create");
  std::unique_ptr<LearnedRanker> ranker(new LearnedRanker(b, o));
  AFF_RETURN_IF_ERROR(SetParams(b, o, o.threads));
  for (int it = 0; it < o.rounds; ++it)
    if (XGBoosterUpdateOneIter(b, it, m.h) != 0) return XgbError("train");
  // Serving predicts one small request at a time: no thread team per call.
  if (XGBoosterSetParam(b, "nthread", "1") != 0) return XgbError("param");
  AFF_RETURN_IF_ERROR(ranker->ReadTrees());
  return ranker;
}

absl::Status LearnedRanker::Save(const std::string& dir) const {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError("cannot create " + dir + ": " + ec.message());
  const std::string model = dir + "/model.json";
  if (XGBoosterSaveModel(booster_, model.c_str()) != 0) return XgbError("save");
  JsonWriter w;
  w.BeginObject();
  w.Key("format").Int(1);
  w.Key("objective").String(options_.objective);
  w.Key("rounds").Int(options_.rounds);
  w.Key("max_depth").Int(options_.max_depth);
  w.Key("eta").Double(options_.eta);
  w.Key("pair_samples").Int(options_.pair_samples);
  w.Key("margin_scale").Double(margin_scale_);
  w.Key("monotone").Bool(options_.monotone);
  w.Key("inputs").BeginArray();
  for (const auto& name : InputNames()) w.String(name);
  w.EndArray();
  w.EndObject();
  if (!WriteFileAtomic(dir + "/ranker.json", w.str())) return absl::InternalError("cannot write " + dir + "/ranker.json");
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<LearnedRanker>> LearnedRanker::Load(const std::string& dir) {
  auto meta = ReadFile(dir + "/ranker.json");
  if (!meta) return absl::NotFoundError("cannot read " + dir + "/ranker.json");
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(*meta).get(doc)) return absl::DataLossError(dir + "/ranker.json is not valid JSON");
  LearnedRankerOptions o;
  double scale = 0, eta = 0;
  int64_t rounds = 0, depth = 0, pairs = 0;
  std::string_view objective;
  simdjson::dom::array inputs;
  if (doc["margin_scale"].get(scale) || doc["inputs"].get(inputs) || doc["objective"].get(objective) ||
      doc["rounds"].get(rounds) || doc["max_depth"].get(depth) || doc["eta"].get(eta) ||
      doc["pair_samples"].get(pairs))
    return absl::DataLossError(dir + "/ranker.json lacks a field");
  // A model trained on other inputs would silently mis-score: refuse it.
  std::vector<std::string> names;
  for (auto v : inputs) {
    std::string_view s;
    if (v.get(s)) return absl::DataLossError(dir + "/ranker.json: inputs must be strings");
    names.emplace_back(s);
  }
  if (names != InputNames())
    return absl::FailedPreconditionError(dir + ": the model was trained on different inputs than this build computes");
  o.margin_scale = scale;
  o.objective = std::string(objective);
  o.rounds = int(rounds);
  o.max_depth = int(depth);
  o.eta = eta;
  o.pair_samples = int(pairs);
  BoosterHandle b = nullptr;
  if (XGBoosterCreate(nullptr, 0, &b) != 0) return XgbError("create");
  std::unique_ptr<LearnedRanker> ranker(new LearnedRanker(b, o));
  const std::string model = dir + "/model.json";
  if (XGBoosterLoadModel(b, model.c_str()) != 0) return XgbError("load");
  if (XGBoosterSetParam(b, "nthread", "1") != 0) return XgbError("param");
  AFF_RETURN_IF_ERROR(ranker->ReadTrees());
  return ranker;
}

absl::StatusOr<std::string> LearnedRanker::ModelJson() const {
  bst_ulong len = 0;
  const char* buf = nullptr;
  if (XGBoosterSaveModelToBuffer(booster_, "{\"format\": \"json\"}", &len, &buf) != 0) return XgbError("dump");
  return std::string(buf, len);
}

absl::Status LearnedRanker::ReadTrees() {
  AFF_ASSIGN_OR_RETURN(std::string json, ModelJson());
  return UseTrees(json);
}

absl::Status LearnedRanker::UseTrees(std::string_view model_json) {
  AFF_ASSIGN_OR_RETURN(TreeEnsemble trees, TreeEnsemble::Parse(model_json, kNumInputs));
  // Rows that straddle the model's own thresholds, scored both ways: a model
  // whose trees read back differently (another format, another version) is refused.
  constexpr size_t kRows = 64;
  std::vector<float> x(kRows * kNumInputs);
  uint64_t state = 0x9e3779b97f4a7c15ull;
  auto next = [&state] {
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    return state;
  };
  const auto& thresholds = trees.Thresholds();
  for (size_t r = 0; r < kRows; ++r)
    for (int f = 0; f < kNumInputs; ++f) {
      const auto& t = thresholds[size_t(f)];
      const float base = t.empty() ? float(next() % 100) / 10.f : t[next() % t.size()];
      const uint64_t side = next() % 3;
      x[r * kNumInputs + f] = side == 0 ? base : side == 1 ? std::nextafter(base, -INFINITY) : base * 1.01f + 0.01f;
    }
  AFF_ASSIGN_OR_RETURN(auto reference, Run(x.data(), kRows, 1));
  AFF_ASSIGN_OR_RETURN(auto reference_paths, Run(x.data(), kRows, 3));
  if (reference_paths.size() != kRows * (kNumInputs + 1)) return absl::InternalError("xgboost: unexpected attribution shape");
  std::vector<float> paths(kNumInputs + 1);
  auto differ = [](float a, float b) { return std::fabs(a - b) > 1e-4f * std::max(1.f, std::fabs(b)); };
  for (size_t r = 0; r < kRows; ++r) {
    const float* row = x.data() + r * kNumInputs;
    const float margin = Margin(row, trees);
    const float mine = trees.Predict(row, margin);
    if (differ(mine, reference[r]))
      return absl::DataLossError("the model's trees read back differently from XGBoost's predictions (" +
                                 std::to_string(mine) + " vs " + std::to_string(reference[r]) +
                                 "): this build cannot serve it; retrain it with this build");
    trees.Attribute(row, margin, paths.data());
    for (int f = 0; f <= kNumInputs; ++f)
      if (differ(paths[size_t(f)], reference_paths[r * (kNumInputs + 1) + size_t(f)]))
        return absl::DataLossError("the model's path attributions differ from XGBoost's for input " +
                                   std::to_string(f) + ": this build cannot serve it; retrain it with this build");
  }
  trees_ = std::move(trees);
  return absl::OkStatus();
}

LearnedRanker::~LearnedRanker() {
  if (booster_) XGBoosterFree(booster_);
}

absl::StatusOr<std::vector<float>> LearnedRanker::Run(const float* inputs, size_t rows, int type) const {
  DMatrix m;
  if (XGDMatrixCreateFromMat(inputs, rows, kNumInputs, NAN, &m.h) != 0) return XgbError("DMatrix");
  if (margin_scale_ != 0) {
    std::vector<float> margin(rows);
    for (size_t i = 0; i < rows; ++i) margin[i] = float(margin_scale_) * inputs[i * kNumInputs + kInBlendScore];
    if (XGDMatrixSetFloatInfo(m.h, "base_margin", margin.data(), rows) != 0) return XgbError("base margin");
  }
  const std::string config = "{\"type\":" + std::to_string(type) +
                             ",\"training\":false,\"iteration_begin\":0,\"iteration_end\":0,\"strict_shape\":false}";
  const bst_ulong* shape = nullptr;
  bst_ulong dim = 0;
  const float* out = nullptr;
  if (XGBoosterPredictFromDMatrix(booster_, m.h, config.c_str(), &shape, &dim, &out) != 0) return XgbError("predict");
  size_t n = 1;
  for (bst_ulong d = 0; d < dim; ++d) n *= size_t(shape[d]);
  return std::vector<float>(out, out + n);
}

absl::StatusOr<std::vector<float>> LearnedRanker::Predict(const float* inputs, size_t rows) const {
  std::vector<float> out(rows);
  for (size_t r = 0; r < rows; ++r) {
    const float* row = inputs + r * kNumInputs;
    out[r] = trees_.Predict(row, Margin(row));
  }
  return out;
}

absl::StatusOr<std::vector<float>> LearnedRanker::Contributions(const float* inputs, size_t rows,
                                                                const std::string& method) const {
  if (method != "treeshap" && method != "saabas") return absl::InvalidArgumentError("unknown attribution method " + method);
  if (method == "treeshap") return Run(inputs, rows, 2);
  std::vector<float> out(rows * (kNumInputs + 1));
  for (size_t r = 0; r < rows; ++r) {
    const float* row = inputs + r * kNumInputs;
    trees_.Attribute(row, Margin(row), out.data() + r * (kNumInputs + 1));
  }
  return out;
}

}  // namespace affinity
