#include "eval/evaluator.h"

#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <unordered_set>

#include "base/json_writer.h"
#include "base/parallel.h"
#include "base/status.h"
#include "batch/pipeline.h"
#include "eval/internal/eval_parts.h"
#include "serving/query_engine.h"
#include "state/ingestor.h"
#include "batch/batch_options.h"

namespace affinity {
namespace eval_internal {

namespace fs = std::filesystem;

Scratch::Scratch(const std::string& dir) {
  if (!dir.empty()) {
    path_ = dir;
    fs::remove_all(path_);
    fs::create_directories(path_);
    return;
  }
  std::string tmpl = (fs::temp_directory_path() / "affinity-eval-XXXXXX").string();
  path_ = ::mkdtemp(tmpl.data());
  owned_ = true;
}

Scratch::~Scratch() {
  std::error_code ec;
  if (owned_) fs::remove_all(path_, ec);
}

absl::StatusOr<std::unique_ptr<EvalWorld>> BuildWorld(const ParsedDataset& d, const std::string& dir,
                                                      const EvalOptions& o, int64_t now, const EvalProgress& progress) {
  auto w = std::make_unique<EvalWorld>();
  AFF_ASSIGN_OR_RETURN(w->store, OpenRocksStore(dir, OpenMode::kPrimary));
  w->registry = std::make_unique<EntityRegistry>();
  w->live = std::make_unique<LiveState>(o.config.actions);
  Ingestor ingestor(w->store.get(), w->registry.get(), w->live.get(), o.config.actions, SystemClock::Default());
  AFF_RETURN_IF_ERROR(ingestor.Import(d.entities, d.entities_where, d.events, d.events_where));
  if (progress) progress("imported", 0, 0);
  BatchOptions bo = o.config.batch;
  if (o.threads > 0) bo.threads = o.threads;
  if (!d.ordered) bo.session_neighbors = 0;  // adjacency in an unordered log means nothing
  AFF_ASSIGN_OR_RETURN(w->snapshot, BuildSnapshot(*w->store, *w->registry, bo, now, nullptr, [&](const std::string& s) {
    if (progress) progress("batch " + s, 0, 0);
  }));
  return w;
}

}  // namespace eval_internal

namespace {

using namespace eval_internal;

void GraphBaselines(const EntityRegistry& registry, const LiveState& live, const TestSet& test,
                    const std::vector<std::unordered_set<uint32_t>>& truth, int k, EvalResult* result) {
  const uint32_t n = registry.Count(Kind::kUser);
  std::vector<std::vector<uint32_t>> nbrs(n);
  for (uint32_t u = 0; u < n; ++u)
    for (Ref t : live.Viewer(Ref(Kind::kUser, u))->follows)
      if (t.kind() == Kind::kUser) {
        nbrs[u].push_back(t.id());
        nbrs[t.id()].push_back(u);
      }
  for (auto& v : nbrs) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
  }
  MetricSums cn_sums, aa_sums;
  std::vector<float> cn(n, 0), aa(n, 0);
  std::vector<uint32_t> touched;
  for (size_t t = 0; t < test.users.size(); ++t) {
    auto r = registry.Find(test.users[t]);
    if (!r) {
      cn_sums.Add({});
      aa_sums.Add({});
      continue;
    }
    uint32_t u = r->id();
    for (uint32_t w : nbrs[u])
      for (uint32_t v : nbrs[w]) {
        if (v == u) continue;
        if (cn[v] == 0 && aa[v] == 0) touched.push_back(v);
        cn[v] += 1;
        aa[v] += 1.0f / std::log(std::max<float>(2.0f, float(nbrs[w].size())));
      }
    auto rank = [&](const std::vector<float>& score) {
      std::vector<uint32_t> cands;
      for (uint32_t v : touched)
        if (!std::binary_search(nbrs[u].begin(), nbrs[u].end(), v)) cands.push_back(v);
      size_t m = std::min(cands.size(), size_t(k));
      std::partial_sort(cands.begin(), cands.begin() + m, cands.end(), [&](uint32_t a, uint32_t b) {
        return score[a] > score[b] || (score[a] == score[b] && a < b);
      });
      cands.resize(m);
      return cands;
    };
    cn_sums.Add(ComputeUserMetrics(rank(cn), truth[t], k));
    aa_sums.Add(ComputeUserMetrics(rank(aa), truth[t], k));
    for (uint32_t v : touched) cn[v] = aa[v] = 0;
    touched.clear();
  }
  result->baselines["common_neighbors"] = cn_sums.Mean();
  result->baselines["adamic_adar"] = aa_sums.Mean();
}

std::string StripPrefix(const std::string& id, bool strip) { return strip && !id.empty() ? id.substr(1) : id; }

// Step 4: ranks every test user through the serving path; fills `ranked`.
absl::Status RankTestUsers(const EvalOptions& o, const EvalWorld& world, Kind target, const TestSet& test,
                           std::shared_ptr<const LearnedRanker> learned, const EvalProgress& progress,
                           std::vector<std::vector<uint32_t>>* ranked_out) {
  const SystemClock* clock = SystemClock::Default();
  EntityRegistry& registry = *world.registry;
  LiveState& live = *world.live;
  const Snapshot* snap = world.snapshot.get();
  auto& ranked = *ranked_out;
  ServingOptions serving = o.config.serving;
  QueryEngine engine(serving, &registry, &live, nullptr, nullptr, clock);
  if (learned) engine.SetLearnedRanker(learned);
  const int kmax = std::max(o.k, 100);
  const size_t n_users = test.users.size();
  ranked.assign(n_users, {});
  std::atomic<int64_t> done{0};
  std::atomic<bool> failed{false};
  std::mutex err_mu;
  absl::Status first_error;
  const int threads = o.threads > 0 ? o.threads : DefaultThreads();
  ParallelFor(n_users, threads, [&](size_t u, int) {
    if (failed) return;
    QueryRequest q;
    q.viewer_id = test.users[u];
    q.target = target;
    q.k = kmax;
    q.explain = ExplainMode::kNone;
    q.audit = false;
    q.deadline_ms = 10000;
    q.max_per_creator = 0;
    q.exclude_engaged = true;
    q.ranker = kRankerModeNames.Parse(o.ranker).value_or(RankerMode::kLearned);
    auto r = engine.QueryWith(q, snap);
    if (!r.ok()) {
      std::lock_guard<std::mutex> lock(err_mu);
      failed = true;
      first_error = r.status();
      return;
    }
    for (const auto& res : r->results) ranked[u].push_back(res.ref.id());
    int64_t n = ++done;
    if (progress && n % 1000 == 0) progress("ranking", n, int64_t(n_users));
  }, 16);
  return failed ? first_error : absl::OkStatus();
}

// Each test user's held-out entities as dense ids; ids for ones never seen in
// training count in |test| and are never hit.
std::vector<std::unordered_set<uint32_t>> Truth(const EntityRegistry& registry, Kind target, const TestSet& test) {
  std::vector<std::unordered_set<uint32_t>> truth(test.users.size());
  uint32_t unknown_id = 0x40000000u;
  for (size_t u = 0; u < test.users.size(); ++u)
    for (const auto& item : test.items[u]) {
      auto r = registry.Find(item);
      truth[u].insert(r && r->kind() == target ? r->id() : unknown_id++);
    }
  return truth;
}

// Ranks by engagers at the snapshot, without what each user engaged with: the
// baseline every recommender should beat.
UserMetrics PopularityBaseline(const EvalWorld& w, Kind target, const TestSet& test,
                               const std::vector<std::unordered_set<uint32_t>>& truth, int k) {
  const KindSnapshot& ks = w.snapshot->kind(target);
  std::vector<uint32_t> order(ks.engagers.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return ks.engagers[a] > ks.engagers[b]; });
  MetricSums sums;
  for (size_t u = 0; u < test.users.size(); ++u) {
    auto viewer = w.registry->Find(test.users[u]);
    auto state = w.live->Viewer(viewer ? *viewer : Ref());
    std::vector<uint32_t> top;
    for (uint32_t id : order) {
      if (top.size() >= size_t(k)) break;
      const Ref r(target, id);
      if ((viewer && *viewer == r) || state->Engaged(r)) continue;
      top.push_back(id);
    }
    sums.Add(ComputeUserMetrics(top, truth[u], k));
  }
  return sums.Mean();
}

// The options and the build behind a run, for the report.
std::vector<std::pair<std::string, std::string>> RunInfo(const EvalOptions& o, int64_t now_ms) {
  char date[32];
  const std::time_t t = std::time_t(now_ms / 1000);
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  std::vector<std::pair<std::string, std::string>> info = {
      {"date", date}, {"affinity", AFFINITY_VERSION " (commit " AFFINITY_COMMIT " when the build was configured)"},
      {"format", o.format}, {"train", o.train}};
  if (o.validation > 0)
    info.emplace_back("validation", std::to_string(o.validation) + " of each line, " + o.validation_order);
  else if (!o.test.empty())
    info.emplace_back("test", o.test);
  info.emplace_back("k", std::to_string(o.k));
  info.emplace_back("ranker", o.ranker + (o.ranker_model.empty() ? "" : " (model " + o.ranker_model + ")"));
  info.emplace_back("configuration", o.config_path.empty() ? "the defaults" : o.config_path);
  return info;
}

}  // namespace

absl::StatusOr<EvalResult> RunEval(const EvalOptions& o, const EvalProgress& progress) {
  auto t_all = Clock_::now();
  if (o.k < 1 || o.k > 500) return absl::InvalidArgumentError("--k must be between 1 and 500");
  if (!kRankerModeNames.Parse(o.ranker))
    return absl::InvalidArgumentError("--ranker must be learned or off");
  if (o.validation_order != "latest" && o.validation_order != "random")
    return absl::InvalidArgumentError("--validation-order must be latest or random");
  if (o.validation_order == "random" && o.format != "lightgcn")
    return absl::InvalidArgumentError("--validation-order random applies to --format lightgcn only");
  EvalResult result;
  result.k = o.k;
  result.ranker = o.ranker;
  result.dataset = o.train;
  const int64_t now = SystemClock::Default()->NowMillis();


  // 1. Parse the data and the split.
  ParsedDataset d;
  TestSet test;
  bool strip_prefix = false;
  Kind target = Kind::kItem;
  AFF_RETURN_IF_ERROR(LoadEvalData(o, now, &d, &test, &target, &strip_prefix));
  if (progress) progress("parsed", int64_t(d.events.size()), int64_t(test.users.size()));
  result.run_info = RunInfo(o, now);
  // The LightGCN Gowalla split (29,858 test users, 810,128 training interactions)
  // has published figures: they are shown beside the run.
  if (o.format == "lightgcn" && o.validation <= 0 && test.users.size() == 29858 && d.events.size() == 810128)
    result.published = {{"LightGCN (He et al., SIGIR 2020)", 0.1830, 0.1554},
                        {"BSPM-EM (Choi et al., SIGIR 2023), best published", 0.1920, 0.1597}};

  // 2. With --ranker learned: the ranker, trained on validation slices.
  AFF_ASSIGN_OR_RETURN(std::shared_ptr<const LearnedRanker> learned,
                       TrainEvalRanker(o, d, target, now, progress, &result));

  // 3. Build the world from the training data, exactly as import + batch do.
  auto t_build = Clock_::now();
  Scratch scratch(o.scratch_dir);
  AFF_ASSIGN_OR_RETURN(auto world, BuildWorld(d, scratch.path(), o, now, progress));
  d = ParsedDataset();
  result.build_seconds = Since(t_build);

  // 4. Rank for every test user through the serving path.
  auto t_rank = Clock_::now();
  std::vector<std::vector<uint32_t>> ranked;
  AFF_RETURN_IF_ERROR(RankTestUsers(o, *world, target, test, learned, progress, &ranked));
  result.rank_seconds = Since(t_rank);
  result.target = std::string(KindName(target)) + "s";
  const auto truth = Truth(*world->registry, target, test);
  if (target == Kind::kUser) GraphBaselines(*world->registry, *world->live, test, truth, o.k, &result);
  result.baselines["popularity"] = PopularityBaseline(*world, target, test, truth, o.k);

  // 5. Metrics, and each test user's list.
  FillMetrics({o, *world->registry, *world->live, world->snapshot.get(), target, test, ranked, truth}, &result);
  result.topk.reserve(test.users.size());
  for (size_t u = 0; u < test.users.size(); ++u) {
    std::vector<std::string> ids;
    for (size_t r = 0; r < ranked[u].size() && r < size_t(o.k); ++r)
      ids.push_back(StripPrefix(world->registry->ExtId(Ref(target, ranked[u][r])), strip_prefix));
    result.topk.emplace_back(StripPrefix(test.users[u], strip_prefix), std::move(ids));
  }
  result.seconds = Since(t_all);
  return result;
}

std::string EvalJson(const EvalResult& r) {
  JsonWriter w;
  auto metrics = [&](const UserMetrics& m) {
    w.Key("recall").Double(m.recall).Key("ndcg").Double(m.ndcg).Key("precision").Double(m.precision);
    w.Key("map").Double(m.ap).Key("hit_rate").Double(m.hit);
  };
  w.BeginObject();
  w.Key("k").Int(r.k).Key("users").Int(r.users);
  metrics(r.at_k);
  w.Key("coverage").Double(r.coverage).Key("popularity_bias").Double(r.popularity_bias);
  w.Key("seconds").Double(r.seconds).Key("build_seconds").Double(r.build_seconds).Key("rank_seconds").Double(r.rank_seconds);
  w.Key("train_seconds").Double(r.train_seconds);
  w.Key("ranker").String(r.ranker).Key("ranker_validation_ndcg").Double(r.ranker_validation_ndcg).Key("blend_validation_ndcg").Double(r.blend_validation_ndcg).Key("ranker_stream_inputs").String(r.ranker_stream_inputs).Key("dataset").String(r.dataset).Key("target").String(r.target);
  if (!r.baselines.empty()) {
    w.Key("baselines").BeginObject();
    for (const auto& [name, m] : r.baselines) {
      w.Key(name).BeginObject();
      metrics(m);
      w.EndObject();
    }
    w.EndObject();
  }
  w.Key("curve").BeginArray();
  for (const auto& [k, m] : r.curve) {
    w.BeginObject().Key("k").Int(k);
    metrics(m);
    w.EndObject();
  }
  w.EndArray();
  w.Key("exposure_gini").Double(r.exposure_gini);
  if (!r.creator_tiers.empty()) {
    w.Key("creator_exposure_gini").Double(r.creator_exposure_gini);
    w.Key("creator_exposure").BeginArray();
    for (const auto& t : r.creator_tiers)
      w.BeginObject().Key("tier").String(t.name).Key("catalogue_share").Double(t.catalogue_share).Key("exposure_share").Double(t.exposure_share).EndObject();
    w.EndArray();
  }
  if (!r.viewer_cohorts.empty()) {
    w.Key("viewer_cohorts").BeginArray();
    for (const auto& c : r.viewer_cohorts)
      w.BeginObject().Key("cohort").String(c.name).Key("users").Int(c.users).Key("recall").Double(c.recall).Key("ndcg").Double(c.ndcg).Key("tail_exposure_share").Double(c.tail_share).EndObject();
    w.EndArray();
  }
  w.Key("activity_deciles").BeginArray();
  for (const auto& c : r.activity_deciles)
    w.BeginObject().Key("cohort").String(c.name).Key("users").Int(c.users).Key("recall").Double(c.recall).Key("ndcg").Double(c.ndcg).EndObject();
  w.EndArray();
  w.Key("popularity_tiers").BeginArray();
  for (const auto& t : r.popularity_tiers)
    w.BeginObject().Key("tier").String(t.name).Key("catalogue_share").Double(t.catalogue_share)
        .Key("exposure_share").Double(t.exposure_share).Key("recall").Double(t.recall).EndObject();
  w.EndArray();
  w.EndObject();
  return w.Release();
}

}  // namespace affinity

