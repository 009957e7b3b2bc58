#include "eval/evaluator.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <numeric>
#include <random>
#include <unordered_set>
#include <unordered_map>
#include <map>

#include "base/json_writer.h"
#include "base/parallel.h"
#include "base/status.h"
#include "base/strings.h"
#include "batch/pipeline.h"
#include "data/importers.h"
#include "ranking/ranker_training.h"
#include "serving/query_engine.h"
#include "state/ingestor.h"

namespace affinity {
namespace {

namespace fs = std::filesystem;
using Clock_ = std::chrono::steady_clock;

double Since(Clock_::time_point t) { return std::chrono::duration<double>(Clock_::now() - t).count(); }

// A scratch data dir removed on destruction unless the caller named it.
class Scratch {
 public:
  explicit Scratch(const std::string& dir) {
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
  ~Scratch() {
    std::error_code ec;
    if (owned_) fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool owned_ = false;
};

struct TestSet {
  std::vector<std::string> users;                  // external ids, file order
  std::vector<std::vector<std::string>> items;     // external ids
};

// Keeps the events not held out.
void DropHeld(ParsedDataset* d, const std::vector<bool>& held) {
  std::vector<RawEvent> train;
  for (size_t i = 0; i < d->events.size(); ++i)
    if (!held[i]) train.push_back(std::move(d->events[i]));
  d->events.swap(train);
}

absl::Status ParseLightgcnTest(const std::string& file, TestSet* out) {
  std::ifstream in(file);
  if (!in) return absl::NotFoundError("cannot open " + file);
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    auto f = SplitWhitespace(StripCr(line));
    if (f.empty()) continue;
    for (auto tok : f)
      if (!ParseInt64(tok) || *ParseInt64(tok) < 0)
        return absl::InvalidArgumentError(file + ":" + std::to_string(n) + ": '" + std::string(tok) +
                                          "' is not a non-negative integer id");
    if (f.size() < 2) continue;  // a user without test items is not evaluated
    out->users.push_back("u" + std::string(f[0]));
    std::vector<std::string> items;
    for (size_t k = 1; k < f.size(); ++k) items.push_back("i" + std::string(f[k]));
    out->items.push_back(std::move(items));
  }
  return absl::OkStatus();
}

// Native format: each viewer's latest `holdout` share of positive events (by time)
// becomes its test set; everything else trains.
absl::Status SplitNative(ParsedDataset* d, double holdout, TestSet* test) {
  std::unordered_map<std::string, std::vector<size_t>> positives;
  for (size_t i = 0; i < d->events.size(); ++i) {
    const RawEvent& e = d->events[i];
    auto a = ParseAction(e.action);
    if (!a) return absl::InvalidArgumentError(d->events_where.At(i) + ": unknown action '" + e.action + "'");
    double w = e.weight ? *e.weight : 1.0;
    if (IsPositive(*a) && *a != Action::kFollow && w > 0 && e.entity_id.size() && e.entity_id[0] == 'i')
      positives[e.viewer_id].push_back(i);
  }
  std::vector<bool> held(d->events.size(), false);
  std::vector<std::string> viewers;
  for (auto& [v, idx] : positives) viewers.push_back(v);
  std::sort(viewers.begin(), viewers.end());
  for (const auto& v : viewers) {
    auto& idx = positives[v];
    if (idx.size() < 5) continue;
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return *d->events[a].ts < *d->events[b].ts; });
    size_t n_test = std::max<size_t>(1, size_t(std::floor(double(idx.size()) * holdout)));
    std::unordered_set<std::string> train_items;
    for (size_t j = 0; j + n_test < idx.size(); ++j) train_items.insert(d->events[idx[j]].entity_id);
    std::vector<std::string> items;
    for (size_t j = idx.size() - n_test; j < idx.size(); ++j) {
      held[idx[j]] = true;
      const std::string& item = d->events[idx[j]].entity_id;
      if (!train_items.count(item) && std::find(items.begin(), items.end(), item) == items.end()) items.push_back(item);
    }
    if (items.empty()) continue;
    test->users.push_back(v);
    test->items.push_back(std::move(items));
  }
  DropHeld(d, held);
  return absl::OkStatus();
}

uint64_t XorShift(uint64_t& x) {
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return x;
}

// Link prediction: a seeded `share` of undirected follow pairs is held out (both
// directions); each node's held-out partners are its test set.
absl::Status SplitEdges(ParsedDataset* d, double share, TestSet* test) {
  std::unordered_map<std::string, std::vector<size_t>> pair_events;  // "a b" with a < b
  std::vector<std::string> pairs;
  for (size_t i = 0; i < d->events.size(); ++i) {
    if (d->events[i].action != "follow") continue;
    const auto& a = d->events[i].viewer_id;
    const auto& b = d->events[i].entity_id;
    std::string key = a < b ? a + " " + b : b + " " + a;
    auto [it, inserted] = pair_events.try_emplace(key);
    if (inserted) pairs.push_back(key);
    it->second.push_back(i);
  }
  std::sort(pairs.begin(), pairs.end());
  uint64_t rng = 0x5eed1e55ull;
  for (size_t j = pairs.size(); j > 1; --j) std::swap(pairs[j - 1], pairs[XorShift(rng) % j]);
  size_t n_hold = size_t(double(pairs.size()) * share);
  std::vector<bool> held(d->events.size(), false);
  std::map<std::string, std::vector<std::string>> per_node;
  for (size_t j = 0; j < n_hold; ++j) {
    for (size_t i : pair_events[pairs[j]]) held[i] = true;
    auto sp = pairs[j].find(' ');
    std::string a = pairs[j].substr(0, sp), b = pairs[j].substr(sp + 1);
    per_node[a].push_back(b);
    per_node[b].push_back(a);
  }
  for (auto& [node, partners] : per_node) {
    test->users.push_back(node);
    test->items.push_back(std::move(partners));
  }
  DropHeld(d, held);
  return absl::OkStatus();
}

// Holds out a seeded random `share` of each user's events that `eligible` accepts
// (users with fewer than 3 such events keep them all).
template <typename Pred>
void HoldOutPerUser(ParsedDataset* d, double share, uint64_t seed, Pred eligible, TestSet* test, bool latest = false) {
  std::unordered_map<std::string, std::vector<size_t>> by_user;
  std::vector<std::string> order;  // users in order of first appearance
  for (size_t i = 0; i < d->events.size(); ++i) {
    if (!eligible(d->events[i])) continue;
    auto [it, inserted] = by_user.try_emplace(d->events[i].viewer_id);
    if (inserted) order.push_back(d->events[i].viewer_id);
    it->second.push_back(i);
  }
  std::vector<bool> held(d->events.size(), false);
  uint64_t rng = seed;
  for (const auto& user : order) {
    auto& idx = by_user[user];
    if (idx.size() < 3) continue;
    if (latest) {
      std::reverse(idx.begin(), idx.end());  // the latest first (events are in time order)
    } else {
      for (size_t j = idx.size() - 1; j > 0; --j) std::swap(idx[j], idx[XorShift(rng) % (j + 1)]);
    }
    size_t n = std::max<size_t>(1, size_t(double(idx.size()) * share));
    std::vector<std::string> items;
    for (size_t j = 0; j < n; ++j) {
      held[idx[j]] = true;
      items.push_back(d->events[idx[j]].entity_id);
    }
    test->users.push_back(user);
    test->items.push_back(std::move(items));
  }
  DropHeld(d, held);
}

// Creators: a seeded `share` of each user's plays is held out.
absl::Status SplitPlays(ParsedDataset* d, double share, TestSet* test) {
  HoldOutPerUser(d, share, 0x9e3779b9ull, [](const RawEvent& e) { return e.action == "play"; }, test);
  return absl::OkStatus();
}

// Common-neighbour and Adamic-Adar rankings over the (undirected) training follow
// graph, scored with the same metric functions.
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

// Holds out a share of each user's training interactions: by default the latest
// `share` of each line (LightGCN lines list a user's interactions in time order,
// and the test items lean towards the end of the line, docs/evaluation.md, so a
// time-like slice is what tuning needs); with latest = false a seeded random one.
absl::Status SplitValidation(ParsedDataset* d, double share, TestSet* test, bool latest = true,
                             uint64_t seed = 0x7a1d5eedull) {
  if (share >= 1) return absl::InvalidArgumentError("--validation must be below 1");
  HoldOutPerUser(d, share, seed, [](const RawEvent&) { return true; }, test, latest);
  return absl::OkStatus();
}

struct EvalWorld {
  std::unique_ptr<Store> store;
  std::unique_ptr<EntityRegistry> registry;
  std::unique_ptr<LiveState> live;
  std::shared_ptr<Snapshot> snapshot;
};

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

std::string StripPrefix(const std::string& id, bool strip) { return strip && !id.empty() ? id.substr(1) : id; }

}  // namespace

absl::StatusOr<EvalResult> RunEval(const EvalOptions& o, const EvalProgress& progress) {
  auto t_all = Clock_::now();
  if (o.k < 1 || o.k > 500) return absl::InvalidArgumentError("--k must be between 1 and 500");
  if (o.ranker != "off" && o.ranker != "learned")
    return absl::InvalidArgumentError("--ranker must be learned or off");
  if (o.validation_order != "latest" && o.validation_order != "random")
    return absl::InvalidArgumentError("--validation-order must be latest or random");
  if (o.validation_order == "random" && o.format != "lightgcn")
    return absl::InvalidArgumentError("--validation-order random applies to --format lightgcn only");
  EvalResult result;
  result.k = o.k;
  result.ranker = o.ranker;
  result.dataset = o.train;
  const SystemClock* clock = SystemClock::Default();
  const int64_t now = clock->NowMillis();

  // 1. Parse the data and the split.
  ParsedDataset d;
  TestSet test;
  bool strip_prefix = false;
  Kind target = Kind::kItem;
  if (o.format == "lightgcn") {
    AFF_RETURN_IF_ERROR(ParseLightgcn(o.train, now, &d));
    if (o.validation > 0) {
      AFF_RETURN_IF_ERROR(SplitValidation(&d, o.validation, &test, o.validation_order == "latest", 0x5eed0a11ull));
    } else {
      if (o.test.empty()) return absl::InvalidArgumentError("--test is required for --format lightgcn");
      AFF_RETURN_IF_ERROR(ParseLightgcnTest(o.test, &test));
    }
    strip_prefix = true;
  } else if (o.format == "native" || o.format == "synthetic") {
    AFF_RETURN_IF_ERROR(ParseNative(o.train, &d));
    AFF_RETURN_IF_ERROR(SplitNative(&d, o.holdout, &test));
  } else if (o.format == "snap-edges") {
    AFF_RETURN_IF_ERROR(ParseSnapEdges(o.train, now, &d));
    AFF_RETURN_IF_ERROR(SplitEdges(&d, o.holdout, &test));
    if (o.validation > 0) {  // tune on a slice of the training graph, never on the test edges
      test = TestSet();
      AFF_RETURN_IF_ERROR(SplitEdges(&d, o.validation, &test));
    }
    target = Kind::kUser;
    strip_prefix = true;
  } else if (o.format == "hetrec-lastfm") {
    AFF_RETURN_IF_ERROR(ParseHetrecLastfm(o.train, now, &d));
    auto split = o.target == "users" ? &SplitEdges : &SplitPlays;
    if (o.target == "users") {
      target = Kind::kUser;
    } else if (o.target.empty() || o.target == "creators") {
      target = Kind::kCreator;
    } else {
      return absl::InvalidArgumentError("--target must be creators or users for hetrec-lastfm");
    }
    AFF_RETURN_IF_ERROR(split(&d, o.holdout, &test));
    if (o.validation > 0) {
      test = TestSet();
      AFF_RETURN_IF_ERROR(split(&d, o.validation, &test));
    }
  } else {
    return absl::InvalidArgumentError("--format must be lightgcn, native, snap-edges or hetrec-lastfm");
  }
  if (test.users.empty()) return absl::InvalidArgumentError("no test users in " + (o.test.empty() ? o.train : o.test));
  if (progress) progress("parsed", int64_t(d.events.size()), int64_t(test.users.size()));

  // 2. With --ranker learned: train LambdaMART on a validation slice carved from
  // the training data (never the test), with features from the serving path.
  std::shared_ptr<const LearnedRanker> learned;
  if (o.ranker == "learned" && !o.ranker_model.empty()) {
    AFF_ASSIGN_OR_RETURN(auto model, LearnedRanker::Load(o.ranker_model));
    learned = std::move(model);
  } else if (o.ranker == "learned") {
    auto t_train = Clock_::now();
    const RankerOptions& ro = o.config.ranker;
    const int threads = o.threads > 0 ? o.threads : DefaultThreads();
    RankerRows rows;
    // Slice 0 is the latest `validation_share` of each line; slice s holds out
    // s more shares first (dropped) and labels the share before them, so each
    // slice's world ends where its labels begin.
    // Slices past training_slices hold out a seeded random share of each line.
    for (int slice = 0; slice < ro.training_slices + ro.random_slices; ++slice) {
      ParsedDataset dv = d;
      TestSet valid;
      if (slice < ro.training_slices) {
        for (int skip = 0; skip < slice; ++skip) {
          TestSet dropped;
          AFF_RETURN_IF_ERROR(SplitValidation(&dv, ro.validation_share / (1.0 - skip * ro.validation_share), &dropped));
        }
        AFF_RETURN_IF_ERROR(SplitValidation(&dv, ro.validation_share / (1.0 - slice * ro.validation_share), &valid));
      } else {
        AFF_RETURN_IF_ERROR(SplitValidation(&dv, ro.validation_share, &valid, /*latest=*/false, 0xa5a5f00dull + slice));
      }
      Scratch scratch_v(o.scratch_dir.empty() ? "" : o.scratch_dir + "-validation" + std::to_string(slice));
      AFF_ASSIGN_OR_RETURN(auto w, BuildWorld(dv, scratch_v.path(), o, now, progress));
      dv = ParsedDataset();
      QueryEngine engine_v(o.config.serving, w->registry.get(), w->live.get(), nullptr, nullptr, clock);
      // A seeded sample of the validation users (query groups).
      std::vector<size_t> pick(valid.users.size());
      for (size_t i = 0; i < pick.size(); ++i) pick[i] = i;
      std::mt19937_64 rng(17 + slice);
      std::shuffle(pick.begin(), pick.end(), rng);
      const double groups = slice < ro.training_slices ? ro.max_groups : ro.max_groups * ro.random_slice_groups;
      pick.resize(std::min<size_t>(pick.size(), size_t(std::max(1.0, groups))));
      std::sort(pick.begin(), pick.end());
      const size_t n_pick = pick.size();
      std::vector<std::vector<float>> rows_x(n_pick), rows_y(n_pick);
      std::vector<unsigned> relevant(n_pick, 0);
      ParallelFor(n_pick, threads, [&](size_t p, int) {
        const size_t u = pick[p];
        QueryRequest q;
        q.viewer_id = valid.users[u];
        q.target = target;
        q.k = std::min(500, o.config.serving.rerank_depth);  // the candidates the test-time ranker re-scores
        q.new_creator_share = 0;
        q.diversity = 0;
        q.explain = ExplainMode::kNone;
        q.audit = false;
        q.deadline_ms = 10000;
        q.max_per_creator = 0;
        q.exclude_engaged = true;
        q.ranker = "off";
        q.want_inputs = true;
        auto r = engine_v.QueryWith(q, w->snapshot.get());
        if (!r.ok()) return;
        std::unordered_set<std::string> truth(valid.items[u].begin(), valid.items[u].end());
        bool any = false;
        for (const auto& res : r->results) any |= truth.count(res.entity_id) > 0;
        if (!any) return;  // a group without positives teaches the ranker nothing
        for (const auto& res : r->results) {
          if (res.inputs.empty()) continue;
          rows_x[p].insert(rows_x[p].end(), res.inputs.begin(), res.inputs.end());
          rows_y[p].push_back(truth.count(res.entity_id) ? 1.f : 0.f);
        }
        relevant[p] = unsigned(truth.size());
      }, 16);
      for (size_t p = 0; p < n_pick; ++p) {
        if (rows_y[p].empty()) continue;
        rows.AddGroup(rows_x[p], rows_y[p], relevant[p]);
        std::vector<float>().swap(rows_x[p]);
      }
    }
    if (progress) progress("training the ranker on " + std::to_string(rows.groups.size()) + " validation users", 0, 0);
    RankerOptions train_options = ro;
    if (train_options.threads <= 0) train_options.threads = threads;
    AFF_ASSIGN_OR_RETURN(auto fit, FitRanker(rows, train_options, o.k));
    result.ranker_validation_ndcg = fit.ndcg_model;
    result.blend_validation_ndcg = fit.ndcg_blend;
    if (progress)
      progress("ranker validation ndcg@" + std::to_string(o.k) + ": model " + std::to_string(fit.ndcg_model) +
                   ", blend " + std::to_string(fit.ndcg_blend),
               0, 0);
    if (!o.save_model.empty()) {
      AFF_RETURN_IF_ERROR(fit.model->Save(o.save_model));
      JsonWriter vw;
      vw.BeginObject().Key("source").String("eval-validation:" + o.train).Key("ndcg").Double(fit.ndcg_model);
      vw.Key("blend_ndcg").Double(fit.ndcg_blend).Key("train_groups").Int(int64_t(fit.train_groups));
      vw.Key("validation_groups").Int(int64_t(fit.validation_groups)).Key("train_rows").Int(int64_t(fit.train_rows));
      vw.EndObject();
      if (!WriteFileAtomic(o.save_model + "/validation.json", vw.str()))
        return absl::InternalError("cannot write " + o.save_model + "/validation.json");
    }
    learned = std::move(fit.model);
    result.train_seconds = Since(t_train);
  }

  // 3. Build the world from the training data, exactly as import + batch do.
  auto t_build = Clock_::now();
  Scratch scratch(o.scratch_dir);
  AFF_ASSIGN_OR_RETURN(auto world, BuildWorld(d, scratch.path(), o, now, progress));
  d = ParsedDataset();
  EntityRegistry& registry = *world->registry;
  LiveState& live = *world->live;
  std::shared_ptr<Snapshot> snap = world->snapshot;
  result.build_seconds = Since(t_build);

  // 4. Rank for every test user through the serving path.
  auto t_rank = Clock_::now();
  ServingOptions serving = o.config.serving;
  QueryEngine engine(serving, &registry, &live, nullptr, nullptr, clock);
  if (learned) engine.SetLearnedRanker(learned);
  const int kmax = std::max(o.k, 100);
  const size_t n_users = test.users.size();
  std::vector<std::vector<uint32_t>> ranked(n_users);
  std::vector<std::unordered_set<uint32_t>> truth(n_users);
  const uint32_t catalogue = registry.Count(target);
  uint32_t unknown_id = 0x40000000u;  // ids for test items never seen in training (count in |test|, never hit)
  for (size_t u = 0; u < n_users; ++u)
    for (const auto& item : test.items[u]) {
      auto r = registry.Find(item);
      truth[u].insert(r && r->kind() == target ? r->id() : unknown_id++);
    }
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
    q.ranker = o.ranker;
    auto r = engine.QueryWith(q, snap.get());
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
  if (failed) return first_error;
  result.rank_seconds = Since(t_rank);
  result.target = std::string(KindName(target)) + "s";
  if (target == Kind::kUser) GraphBaselines(registry, live, test, truth, o.k, &result);

  // 4. Metrics.
  std::vector<double> pop(catalogue, 0);
  const KindSnapshot& ks = snap->kind(target);
  for (uint32_t i = 0; i < catalogue && i < ks.engagers.size(); ++i) pop[i] = ks.engagers[i];
  std::vector<uint32_t> order(catalogue);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return pop[a] > pop[b]; });
  std::vector<double> pct(catalogue, 0);  // 1 = most popular
  std::vector<int> tier(catalogue, 2);    // 0 head (top 20%), 1 mid (next 30%), 2 tail
  for (size_t r = 0; r < order.size(); ++r) {
    pct[order[r]] = 1.0 - double(r) / double(std::max<size_t>(1, order.size()));
    double q = double(r) / double(std::max<size_t>(1, order.size()));
    tier[order[r]] = q < 0.2 ? 0 : q < 0.5 ? 1 : 2;
  }
  std::vector<int> ks_curve = {1, 5, 10, 20, 50, 100};
  if (std::find(ks_curve.begin(), ks_curve.end(), o.k) == ks_curve.end()) ks_curve.push_back(o.k);
  std::sort(ks_curve.begin(), ks_curve.end());
  std::map<int, MetricSums> sums;
  std::vector<UserMetrics> per_user(n_users);
  std::vector<char> recommended(catalogue, 0);
  std::array<double, 3> tier_exposure{}, tier_hits{}, tier_test{};
  std::array<double, 10> decile_exposure{};
  double pct_sum = 0, slots = 0;
  for (size_t u = 0; u < n_users; ++u) {
    for (int k : ks_curve) {
      UserMetrics m = ComputeUserMetrics(ranked[u], truth[u], k);
      sums[k].Add(m);
      if (k == o.k) per_user[u] = m;
    }
    size_t n = std::min<size_t>(ranked[u].size(), size_t(o.k));
    for (size_t r = 0; r < n; ++r) {
      uint32_t id = ranked[u][r];
      if (id >= catalogue) continue;
      recommended[id] = 1;
      pct_sum += pct[id];
      slots += 1;
      tier_exposure[tier[id]] += 1;
      decile_exposure[std::min(9, int((1.0 - pct[id]) * 10))] += 1;
      if (truth[u].count(id)) tier_hits[tier[id]] += 1;
    }
    for (uint32_t id : truth[u])
      if (id < catalogue) tier_test[tier[id]] += 1;
  }
  result.users = int64_t(n_users);
  result.at_k = sums[o.k].Mean();
  for (auto& [k, s] : sums) result.curve[k] = s.Mean();
  result.coverage = catalogue ? double(std::count(recommended.begin(), recommended.end(), 1)) / catalogue : 0;
  result.popularity_bias = slots > 0 ? pct_sum / slots : 0;
  const char* tier_names[3] = {"head (top 20% by engagers)", "mid (next 30%)", "tail (bottom 50%)"};
  const double tier_share[3] = {0.2, 0.3, 0.5};
  for (int t = 0; t < 3; ++t)
    result.popularity_tiers.push_back({tier_names[t], tier_share[t], slots > 0 ? tier_exposure[t] / slots : 0,
                                       tier_test[t] > 0 ? tier_hits[t] / tier_test[t] : 0});
  for (int dcl = 0; dcl < 10; ++dcl)
    result.popularity_curve.push_back({(dcl + 1) / 10.0, slots > 0 ? decile_exposure[dcl] / slots : 0});
  // Exposure fairness: how recommendation slots spread over entities and over
  // creators (an item's slot is its creator's exposure; a creator's own slot
  // too), by creator popularity tier, with Gini coefficients.
  {
    std::vector<double> entity_slots(catalogue, 0);
    const uint32_t n_creators = registry.Count(Kind::kCreator);
    std::vector<double> creator_slots(n_creators, 0);
    double creator_total = 0;
    for (size_t u = 0; u < n_users; ++u)
      for (size_t r = 0; r < ranked[u].size() && r < size_t(o.k); ++r) {
        const uint32_t id = ranked[u][r];
        if (id >= catalogue) continue;
        entity_slots[id] += 1;
        Ref creator = target == Kind::kCreator ? Ref(Kind::kCreator, id)
                      : target == Kind::kItem ? registry.CreatorOf(Ref(Kind::kItem, id)) : Ref();
        if (creator.valid() && creator.id() < n_creators) creator_slots[creator.id()] += 1, creator_total += 1;
      }
    result.exposure_gini = Gini(entity_slots);
    if (creator_total > 0) {
      result.creator_exposure_gini = Gini(creator_slots);
      // Creator popularity: distinct engagers of the creator and of its items.
      std::vector<double> audience(n_creators, 0);
      const KindSnapshot& cks = snap->kind(Kind::kCreator);
      for (uint32_t c = 0; c < n_creators && c < cks.engagers.size(); ++c) audience[c] += cks.engagers[c];
      const KindSnapshot& iks = snap->kind(Kind::kItem);
      for (uint32_t i = 0; i < iks.engagers.size(); ++i) {
        Ref c = registry.CreatorOf(Ref(Kind::kItem, i));
        if (c.valid() && c.id() < n_creators) audience[c.id()] += iks.engagers[i];
      }
      std::vector<uint32_t> by_pop(n_creators);
      std::iota(by_pop.begin(), by_pop.end(), 0u);
      std::stable_sort(by_pop.begin(), by_pop.end(), [&](uint32_t a, uint32_t b) { return audience[a] > audience[b]; });
      const char* names[3] = {"head creators (top 20% by audience)", "mid creators (next 30%)", "tail creators (bottom 50%)"};
      const double bounds[4] = {0, 0.2, 0.5, 1.0};
      for (int t = 0; t < 3; ++t) {
        size_t b = size_t(bounds[t] * n_creators), e = size_t(bounds[t + 1] * n_creators);
        double exp = 0;
        for (size_t j = b; j < e; ++j) exp += creator_slots[by_pop[j]];
        result.creator_tiers.push_back({names[t], double(e - b) / n_creators, exp / creator_total, 0});
      }
      // Creators not yet established (the serving floor's definition).
      double new_slots = 0, new_count = 0;
      for (uint32_t c = 0; c < n_creators; ++c)
        if (c >= cks.engagers.size() || cks.engagers[c] < float(o.config.serving.new_creator_max_audience))
          new_count += 1, new_slots += creator_slots[c];
      result.creator_tiers.push_back({"new creators (serving.new_creator_max_audience)", new_count / n_creators,
                                      new_slots / creator_total, 0});
    }
    // Viewer cohorts (the users' cohort labels): quality and tail exposure.
    std::map<std::string, std::pair<MetricSums, std::pair<double, double>>> cohorts;
    for (size_t u = 0; u < n_users; ++u) {
      auto r = registry.Find(test.users[u]);
      auto info = r ? registry.Get(*r) : nullptr;
      if (!info || info->cohort.empty()) continue;
      auto& c = cohorts[info->cohort];
      c.first.Add(per_user[u]);
      for (size_t j = 0; j < ranked[u].size() && j < size_t(o.k); ++j)
        if (ranked[u][j] < catalogue) c.second.first += tier[ranked[u][j]] == 2, c.second.second += 1;
    }
    for (auto& [name, c] : cohorts) {
      UserMetrics m = c.first.Mean();
      result.viewer_cohorts.push_back({name, c.first.users, m.recall, m.ndcg, c.second.second > 0 ? c.second.first / c.second.second : 0});
    }
  }
  // Viewer activity deciles (by training interactions).
  std::vector<std::pair<double, size_t>> activity(n_users);
  for (size_t u = 0; u < n_users; ++u) {
    auto r = registry.Find(test.users[u]);
    activity[u] = {r ? double(live.Viewer(*r)->engaged.size()) : 0.0, u};
  }
  std::sort(activity.begin(), activity.end());
  for (int dcl = 0; dcl < 10; ++dcl) {
    size_t b = n_users * size_t(dcl) / 10, e = n_users * size_t(dcl + 1) / 10;
    MetricSums s;
    for (size_t j = b; j < e; ++j) s.Add(per_user[activity[j].second]);
    UserMetrics m = s.Mean();
    std::string name = "decile " + std::to_string(dcl + 1) + " (" + std::to_string(int64_t(b < e ? activity[b].first : 0)) +
                       "-" + std::to_string(int64_t(b < e ? activity[e - 1].first : 0)) + " interactions)";
    result.activity_deciles.push_back({name, s.users, m.recall, m.ndcg});
  }
  result.topk.reserve(n_users);
  for (size_t u = 0; u < n_users; ++u) {
    std::vector<std::string> ids;
    for (size_t r = 0; r < ranked[u].size() && r < size_t(o.k); ++r)
      ids.push_back(StripPrefix(registry.ExtId(Ref(target, ranked[u][r])), strip_prefix));
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
  w.Key("ranker").String(r.ranker).Key("ranker_validation_ndcg").Double(r.ranker_validation_ndcg).Key("blend_validation_ndcg").Double(r.blend_validation_ndcg).Key("dataset").String(r.dataset).Key("target").String(r.target);
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
