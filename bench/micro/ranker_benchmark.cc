// The learned ranker's per-request work at the default model size (100 trees of
// depth 4): scoring the re-ranked rows and attributing the returned ones, through
// the read-back trees and, for reference, through XGBoost's own prediction calls.
#include <benchmark/benchmark.h>
#include <xgboost/c_api.h>

#include <filesystem>
#include <memory>
#include <random>
#include <vector>

#include "ranking/drift.h"
#include "state/live_state.h"
#include "ranking/learned_ranker.h"

namespace affinity::bench {
namespace {

struct RankerFixture {
  std::unique_ptr<LearnedRanker> model;
  BoosterHandle booster = nullptr;  // the same model, loaded into XGBoost
  std::vector<float> rows;          // 100 rows of inputs
};

RankerFixture& Fixture() {
  static RankerFixture* f = [] {
    auto* fx = new RankerFixture;
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> u(0, 1);
    const int n_groups = 300, per_group = 100, n = kNumRankInputs;
    std::vector<float> x, y;
    std::vector<unsigned> groups;
    for (int g = 0; g < n_groups; ++g) {
      for (int r = 0; r < per_group; ++r) {
        float signal = 0;
        for (int j = 0; j < n; ++j) {
          const float v = u(rng);
          x.push_back(v);
          if (j % 5 == 0) signal += v;
        }
        y.push_back(signal + 0.5f * u(rng) > float(n) / 10.f + 0.6f ? 1.f : 0.f);
      }
      groups.push_back(per_group);
    }
    LearnedRankerOptions o;
    o.threads = 2;
    fx->model = std::move(*LearnedRanker::Train(x, y, groups, o));
    const std::string dir = (std::filesystem::temp_directory_path() / "affinity-ranker-bench").string();
    if (!fx->model->Save(dir).ok()) std::abort();
    XGBoosterCreate(nullptr, 0, &fx->booster);
    XGBoosterLoadModel(fx->booster, (dir + "/model.json").c_str());
    XGBoosterSetParam(fx->booster, "nthread", "1");
    std::filesystem::remove_all(dir);
    fx->rows.assign(x.begin(), x.begin() + size_t(per_group) * size_t(n));
    return fx;
  }();
  return *f;
}

void BM_RankerScoreRows(benchmark::State& state) {
  RankerFixture& f = Fixture();
  const size_t rows = size_t(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(f.model->Predict(f.rows.data(), rows));
  state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(rows));
}
BENCHMARK(BM_RankerScoreRows)->Arg(100);

void BM_RankerAttributions(benchmark::State& state) {
  RankerFixture& f = Fixture();
  const AttributionMethod method = state.range(0) == 0 ? AttributionMethod::kSaabas : AttributionMethod::kTreeShap;
  state.SetLabel(std::string(AttributionMethodName(method)));
  for (auto _ : state) benchmark::DoNotOptimize(f.model->Contributions(f.rows.data(), 20, method));
}
BENCHMARK(BM_RankerAttributions)->Arg(0)->Arg(1);

// XGBoost's prediction of the same rows from a DMatrix (type 1: margin, 3: path attributions).
void BM_XgboostPredictFromDMatrix(benchmark::State& state) {
  RankerFixture& f = Fixture();
  const int type = int(state.range(0));
  const size_t rows = type == 1 ? 100 : 20;
  state.SetLabel(type == 1 ? "score 100 rows" : "path attributions, 20 rows");
  const std::string config = "{\"type\":" + std::to_string(type) +
                             ",\"training\":false,\"iteration_begin\":0,\"iteration_end\":0,\"strict_shape\":false}";
  for (auto _ : state) {
    DMatrixHandle m = nullptr;
    XGDMatrixCreateFromMat(f.rows.data(), rows, kNumRankInputs, NAN, &m);
    const bst_ulong* shape = nullptr;
    bst_ulong dim = 0;
    const float* out = nullptr;
    XGBoosterPredictFromDMatrix(f.booster, m, config.c_str(), &shape, &dim, &out);
    benchmark::DoNotOptimize(out);
    XGDMatrixFree(m);
  }
}
BENCHMARK(BM_XgboostPredictFromDMatrix)->Arg(1)->Arg(3);

}  // namespace
}  // namespace affinity::bench

namespace affinity::bench {
namespace {

// `rows` random rows of ranker inputs and their scores, and a monitor whose
// reference is the first 2,000 of them.
struct DriftRows {
  std::vector<float> x, scores;
  std::unique_ptr<DriftMonitor> monitor;
};
DriftRows MakeDriftRows(size_t rows) {
  std::mt19937 rng(3);
  std::normal_distribution<float> n(0, 1);
  DriftRows d;
  d.x.resize(rows * kNumRankInputs);
  d.scores.resize(rows);
  for (auto& v : d.x) v = n(rng);
  for (auto& v : d.scores) v = n(rng);
  d.monitor = std::make_unique<DriftMonitor>(DriftReference::Build(d.x.data(), kNumRankInputs, d.scores.data(), 2000,
                                                                   {0, 3, 8, 20, 40}, RankerInputNames()));
  return d;
}

// What the rerank stage adds per query for drift: copying the 20 top rows and
// recording them in the model's drift window (a try-lock; never waits).
void BM_DriftObserveTop20(benchmark::State& state) {
  DriftRows d = MakeDriftRows(2000);
  const std::vector<float>& x = d.x;
  const std::vector<float>& scores = d.scores;
  DriftMonitor& monitor = *d.monitor;
  std::vector<float> rows(20 * kNumRankInputs), top(20);
  size_t at = 0;
  for (auto _ : state) {
    for (size_t i = 0; i < 20; ++i) {
      std::copy_n(&x[((at + i) % 2000) * kNumRankInputs], kNumRankInputs, &rows[i * kNumRankInputs]);
      top[i] = scores[(at + i) % 2000];
    }
    monitor.Observe(rows.data(), kNumRankInputs, top.data(), 20);
    at += 20;
  }
}
BENCHMARK(BM_DriftObserveTop20);

// The evaluation behind /admin/drift and /metrics: six signals, 2,000 rows each.
void BM_DriftEvaluate(benchmark::State& state) {
  DriftRows d = MakeDriftRows(4000);
  d.monitor->Observe(d.x.data() + 2000 * kNumRankInputs, kNumRankInputs, d.scores.data() + 2000, 2000);
  for (auto _ : state) benchmark::DoNotOptimize(d.monitor->Evaluate(DriftThresholds{}));
}
BENCHMARK(BM_DriftEvaluate)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace affinity::bench

namespace affinity::bench {
namespace {

// What the streaming groups add to applying one accepted event: the entity's,
// the viewer's and the creator's counters at three half-lives each.
void BM_StreamCountersPerEvent(benchmark::State& state) {
  DecayedCounters entity, viewer, creator;
  std::mt19937 rng(5);
  std::uniform_int_distribution<uint32_t> item(0, 199999), user(0, 99999), maker(0, 4999);
  int64_t ts = 1'700'000'000'000;
  for (auto _ : state) {
    ts += 3;
    entity.Add(Ref(Kind::kItem, item(rng)), 1.0, ts);
    viewer.Add(Ref(Kind::kUser, user(rng)), 1.0, ts);
    creator.Add(Ref(Kind::kCreator, maker(rng)), 1.0, ts);
  }
}
BENCHMARK(BM_StreamCountersPerEvent);

}  // namespace
}  // namespace affinity::bench
