// Experiments on the query path and their reports: assignment and per-arm
// bookkeeping of one response (including its counter write to the store), and
// a report over 1M exposures of 100k viewers.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <random>

#include "bench_world.h"
#include "experiments/experiment_report.h"
#include "experiments/experiment_service.h"

namespace affinity::bench {
namespace {

// Assign + RecordResponse for a 20-result response, viewers rotating over the
// bench world's active ones; counters p50_us / p99_us are per call.
void BM_ExperimentAssignAndRecord(benchmark::State& state) {
  BenchWorld& w = GetBenchWorld();
  static ExperimentService* service = [&] {
    auto* s = new ExperimentService(w.world.store.get(), w.world.config.serving, w.world.config.experiments, &w.world.registry, w.world.live.get(),
                                    nullptr, &w.world.clock, nullptr, nullptr);
    auto created = s->Create(R"({"id":"bench)" + std::to_string(std::random_device{}()) +
                             R"(","arms":[{"name":"control","weight":50},{"name":"t","weight":50,"ranker":"off"}]})");
    if (!created.ok()) std::abort();
    return s;
  }();
  QueryRequest q;
  q.k = 20;
  std::vector<QueryResponse> responses;
  for (size_t i = 0; i < 64; ++i) {
    q.viewer_id = w.viewers[i % w.viewers.size()];
    auto r = w.engine->QueryWith(q, w.snapshot.get());
    if (!r.ok()) std::abort();
    responses.push_back(*r);
  }
  std::vector<double> micros;
  size_t i = 0;
  for (auto _ : state) {
    const std::string& viewer = w.viewers[i % w.viewers.size()];
    const QueryResponse& resp = responses[i % responses.size()];
    const auto t0 = std::chrono::steady_clock::now();
    Assignment a = service->Assign(viewer, Kind::kItem);
    service->RecordResponse(a, viewer, resp, 2.0);
    micros.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    ++i;
  }
  std::sort(micros.begin(), micros.end());
  state.counters["p50_us"] = micros[micros.size() / 2];
  state.counters["p99_us"] = micros[micros.size() * 99 / 100];
}
BENCHMARK(BM_ExperimentAssignAndRecord)->Iterations(20000);

// The report of a two-arm experiment with 100k viewers and 1M exposures over
// 5,000 creators (the figures from the per-viewer counts, then the statistics).
void BM_ExperimentReport(benchmark::State& state) {
  static ExperimentMetrics* metrics = [] {
    auto* m = new ExperimentMetrics("bench", 2);
    std::mt19937_64 rng(1);
    std::vector<Store::CounterDelta> sink;
    ServedFacts f;
    for (int v = 0; v < 100000; ++v) {
      const std::string viewer = "u" + std::to_string(v);
      const int arm = v % 2;
      std::unordered_map<uint32_t, int64_t> creators;
      std::unordered_map<std::string, int64_t> cohorts;
      f.results.assign(10, 0);
      for (int k = 0; k < 10; ++k) {
        creators[uint32_t(rng() % 5000)]++;
        cohorts[k < 2 ? "new" : ""]++;
      }
      f.latency_ms = 1 + double(rng() % 100) / 10;
      m->OnResponse(viewer, arm, int64_t(rng() % 50), f, &sink);
      m->TakeUnresolved();
      m->AddResolvedCounts(arm, creators, cohorts);
      for (int c = 0; c < int(rng() % 3); ++c) m->OnOutcome(viewer, arm, true, false, &sink);
      sink.clear();
    }
    return m;
  }();
  Experiment def;
  def.id = "bench";
  def.arms = {{"control", 50}, {"t", 50}};
  int64_t exposures = 0;
  for (auto _ : state) {
    ReportInputs in;
    in.figures = metrics->Figures();
    in.cohort_shares = metrics->CohortShares();
    std::map<std::string, double> running;
    std::string json = BuildReportJson(def, in, {}, &running);
    benchmark::DoNotOptimize(json);
    exposures = in.figures[0].exposures + in.figures[1].exposures;
  }
  state.counters["exposures"] = double(exposures);
}
BENCHMARK(BM_ExperimentReport)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace affinity::bench
