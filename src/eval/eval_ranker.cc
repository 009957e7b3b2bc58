// Offline evaluation, step 2: the learned ranker, trained on validation
// slices carved from the training data with inputs from the serving path.
#include <algorithm>
#include <random>
#include <unordered_set>

#include "base/json_writer.h"
#include "base/parallel.h"
#include "base/status.h"
#include "base/strings.h"
#include "eval/internal/eval_parts.h"
#include "ranking/ranker_training.h"
#include "serving/query_engine.h"
#include "ranking/ranker_options.h"

namespace affinity::eval_internal {
namespace {

// One validation slice: its world, a seeded sample of its users served through
// the blend with inputs, each group labelled by the slice's held-out items.
// Slice 0 is the latest `validation_share` of each line; slice s holds out s
// more shares first (dropped) and labels the share before them, so each
// slice's world ends where its labels begin. Slices past training_slices hold
// out a seeded random share of each line.
absl::Status SliceRows(const EvalOptions& o, const ParsedDataset& d, Kind target, int64_t now, int slice,
                       const EvalProgress& progress, RankerRows* rows_out) {
  const RankerOptions& ro = o.config.ranker;
  const int threads = o.threads > 0 ? o.threads : DefaultThreads();
  const SystemClock* clock = SystemClock::Default();
  RankerRows& rows = *rows_out;
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
    q.ranker = RankerMode::kOff;
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
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<const LearnedRanker>> TrainEvalRanker(const EvalOptions& o, const ParsedDataset& d,
                                                                     Kind target, int64_t now,
                                                                     const EvalProgress& progress, EvalResult* out) {
  EvalResult& result = *out;
  if (o.ranker != "learned") return std::shared_ptr<const LearnedRanker>();
  if (!o.ranker_model.empty()) {
    AFF_ASSIGN_OR_RETURN(auto model, LearnedRanker::Load(o.ranker_model));
    return std::shared_ptr<const LearnedRanker>(std::move(model));
  }
  auto t_train = Clock_::now();
  const RankerOptions& ro = o.config.ranker;
  const int threads = o.threads > 0 ? o.threads : DefaultThreads();
  RankerRows rows;
  for (int slice = 0; slice < ro.training_slices + ro.random_slices; ++slice)
    AFF_RETURN_IF_ERROR(SliceRows(o, d, target, now, slice, progress, &rows));
  if (progress) progress("training the ranker on " + std::to_string(rows.groups.size()) + " validation users", 0, 0);
  RankerOptions train_options = ro;
  if (train_options.threads <= 0) train_options.threads = threads;
  AFF_ASSIGN_OR_RETURN(auto fit, FitRanker(rows, train_options, o.k));
  result.ranker_validation_ndcg = fit.ndcg_model;
  result.blend_validation_ndcg = fit.ndcg_blend;
  result.ranker_stream_inputs = StreamInputsNote(fit);
  if (progress)
    progress("ranker validation ndcg@" + std::to_string(o.k) + ": model " + std::to_string(fit.ndcg_model) +
                 ", blend " + std::to_string(fit.ndcg_blend),
             0, 0);
  if (!o.save_model.empty()) {
    AFF_RETURN_IF_ERROR(fit.model->Save(o.save_model));
    JsonWriter vw;
    vw.BeginObject().Key("source").String("eval-validation:" + o.train).Key("ndcg").Double(fit.ndcg_model);
    vw.Key("blend_ndcg").Double(fit.ndcg_blend).Key("stream_inputs").String(result.ranker_stream_inputs);
    vw.Key("train_groups").Int(int64_t(fit.train_groups));
    vw.Key("validation_groups").Int(int64_t(fit.validation_groups)).Key("train_rows").Int(int64_t(fit.train_rows));
    vw.EndObject();
    if (!WriteFileAtomic(o.save_model + "/validation.json", vw.str()))
      return absl::InternalError("cannot write " + o.save_model + "/validation.json");
  }
  result.train_seconds = Since(t_train);
  return std::shared_ptr<const LearnedRanker>(std::move(fit.model));
}

}  // namespace affinity::eval_internal
