// Candidate sources, scoring and the whole query pipeline on a generated world.
#include <benchmark/benchmark.h>

#include "bench_world.h"
#include "candidates/sources.h"
#include "ranking/blend.h"

namespace affinity::bench {
namespace {

Kind TargetOf(int64_t arg) { return arg == 0 ? Kind::kUser : arg == 1 ? Kind::kCreator : Kind::kItem; }

SourceContext ContextFor(BenchWorld& w, const std::string& viewer, std::shared_ptr<const ViewerState>* hold) {
  SourceContext ctx;
  ctx.options = &w.world.config.serving;
  ctx.registry = &w.world.registry;
  ctx.live = w.world.live.get();
  ctx.snapshot = w.snapshot.get();
  ctx.viewer = *w.world.registry.Find(viewer);
  *hold = w.world.live->Viewer(ctx.viewer);
  ctx.state = hold->get();
  ctx.anchors = BuildAnchors(*ctx.state, {}, *ctx.options);
  ctx.now_ms = w.world.clock.NowMillis();
  return ctx;
}

template <void (*Fn)(const SourceContext&, CandidateSet*)>
void BM_Source(benchmark::State& state) {
  BenchWorld& w = GetBenchWorld();
  Kind target = TargetOf(state.range(0));
  size_t i = 0, produced = 0;
  for (auto _ : state) {
    std::shared_ptr<const ViewerState> hold;
    SourceContext ctx = ContextFor(w, w.viewers[i++ % w.viewers.size()], &hold);
    CandidateSet set(target);
    Fn(ctx, &set);
    produced += set.size();
    benchmark::DoNotOptimize(set);
  }
  state.counters["candidates"] = double(produced) / double(state.iterations());
}
BENCHMARK(BM_Source<GraphSource>)->Name("BM_GraphSource")->Arg(0)->Arg(1)->Arg(2);
BENCHMARK(BM_Source<CoEngagementSource>)->Name("BM_CoEngagementSource")->Arg(0)->Arg(1)->Arg(2);
BENCHMARK(BM_Source<AnnSource>)->Name("BM_AnnSource")->Arg(0)->Arg(1)->Arg(2);
BENCHMARK(BM_Source<WalkSource>)->Name("BM_WalkSource")->Arg(0)->Arg(1)->Arg(2);
BENCHMARK(BM_Source<PopularSource>)->Name("BM_PopularSource")->Arg(0)->Arg(1)->Arg(2);

void BM_BlendScore(benchmark::State& state) {
  BenchWorld& w = GetBenchWorld();
  BlendRanker ranker(w.world.config.serving);
  std::shared_ptr<const ViewerState> hold;
  SourceContext ctx = ContextFor(w, w.viewers[0], &hold);
  CandidateSet set(Kind::kItem);
  GraphSource(ctx, &set);
  CoEngagementSource(ctx, &set);
  AnnSource(ctx, &set);
  WalkSource(ctx, &set);
  PopularSource(ctx, &set);
  for (auto _ : state) benchmark::DoNotOptimize(ranker.Score(ctx, set));
  state.counters["candidates"] = double(set.size());
  state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(set.size()));
}
BENCHMARK(BM_BlendScore);

void BM_QueryEndToEnd(benchmark::State& state) {
  BenchWorld& w = GetBenchWorld();
  size_t i = 0;
  for (auto _ : state) {
    QueryRequest q;
    q.viewer_id = w.viewers[i++ % w.viewers.size()];
    q.target = TargetOf(state.range(0));
    q.k = 20;
    q.audit = false;
    q.want_inputs = state.range(1) != 0;
    auto r = w.engine->QueryWith(q, w.snapshot.get());
    benchmark::DoNotOptimize(r);
  }
}
// Second argument 1: the learned ranker's inputs are computed for the best 100
// (what a promoted model or input logging adds before any tree is walked).
BENCHMARK(BM_QueryEndToEnd)->Args({0, 0})->Args({1, 0})->Args({2, 0})->Args({2, 1});

}  // namespace
}  // namespace affinity::bench
