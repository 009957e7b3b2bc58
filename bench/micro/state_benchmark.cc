// The live state's checkpoint on the bench world: writing one (the copy under
// the apply lock, then encoding and an fsynced write) and a start's reading it
// back; and what the learned ranker's inputs cost per query.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <memory>

#include "bench_world.h"
#include "events/event.h"
#include "candidates/sources.h"
#include "ranking/blend.h"
#include "ranking/ranker_inputs.h"

namespace affinity::bench {
namespace {

std::array<uint32_t, kNumKinds> Known(const EntityRegistry& r) {
  return {r.Count(Kind::kUser), r.Count(Kind::kCreator), r.Count(Kind::kItem)};
}

void BM_CheckpointWrite(benchmark::State& state) {
  BenchWorld& w = GetBenchWorld();
  const std::string path = w.world.dir / "bench-state/live.ckpt";
  uint64_t bytes = 0;
  for (auto _ : state) {
    auto info = w.world.live->WriteCheckpoint(path, w.world.clock.NowMillis());
    if (!info.ok()) state.SkipWithError(std::string(info.status().message()).c_str());
    else bytes = info->bytes;
  }
  state.counters["MB"] = double(bytes) / 1e6;
  state.counters["events"] = double(w.world.live->events_applied());
}
BENCHMARK(BM_CheckpointWrite)->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_CheckpointRestore(benchmark::State& state) {
  BenchWorld& w = GetBenchWorld();
  const std::string path = w.world.dir / "bench-state/restore.ckpt";
  if (!w.world.live->WriteCheckpoint(path, w.world.clock.NowMillis()).ok()) std::abort();
  for (auto _ : state) {
    auto live = std::make_unique<LiveState>(w.world.config.actions);
    live->SetCreatorOf([&](Ref r) { return r.kind() == Kind::kItem ? w.world.registry.CreatorOf(r) : Ref(); });
    auto report = live->Load(*w.world.store, path, Known(w.world.registry));
    if (!report.ok() || !report->from_checkpoint) state.SkipWithError("the checkpoint was not used");
    benchmark::DoNotOptimize(live->events_applied());
    state.PauseTiming();  // not the state's teardown
    live.reset();
    state.ResumeTiming();
  }
}
BENCHMARK(BM_CheckpointRestore)->Unit(benchmark::kMillisecond)->Iterations(3);

// The whole log replayed instead (what a start without a checkpoint does).
void BM_ReplayWholeLog(benchmark::State& state) {
  BenchWorld& w = GetBenchWorld();
  for (auto _ : state) {
    auto live = std::make_unique<LiveState>(w.world.config.actions);
    live->SetCreatorOf([&](Ref r) { return r.kind() == Kind::kItem ? w.world.registry.CreatorOf(r) : Ref(); });
    if (!live->Load(*w.world.store).ok()) state.SkipWithError("replay failed");
    benchmark::DoNotOptimize(live->events_applied());
    state.PauseTiming();
    live.reset();
    state.ResumeTiming();
  }
}
BENCHMARK(BM_ReplayWholeLog)->Unit(benchmark::kMillisecond)->Iterations(3);

// One event read back from the log, as a replay or a batch scan reads each:
// its context names a served response (a click on a result: the request_id is
// read out of it) or not (arg 0).
void BM_DecodeEvent(benchmark::State& state) {
  Event e;
  e.ts = 1796000000000;
  e.viewer = Ref(Kind::kUser, 12345);
  e.entity = Ref(Kind::kItem, 67890);
  e.context = state.range(0) ? R"({"request_id":"r-3f2a9c0d8e7b6a51","surface":"home","position":3})"
                             : R"({"surface":"home","position":3})";
  const std::string bytes = EncodeEvent(e);
  Event out;
  for (auto _ : state) {
    benchmark::DoNotOptimize(DecodeEvent(bytes, &out));
    benchmark::DoNotOptimize(out.request_id.data());
  }
}
BENCHMARK(BM_DecodeEvent)->Arg(0)->Arg(1);

// The learned ranker's inputs for the blend's best 100 candidates of a query.
void BM_AssembleRankerInputs(benchmark::State& state) {
  BenchWorld& w = GetBenchWorld();
  BlendRanker blend(w.world.config.serving);
  struct Query {
    std::shared_ptr<const ViewerState> hold;
    SourceContext ctx;
    CandidateSet set{Kind::kItem};
    std::vector<Scored> rows;
  };
  std::vector<Query> queries(50);
  for (size_t i = 0; i < queries.size(); ++i) {
    Query& q = queries[i];
    q.ctx.options = &w.world.config.serving;
    q.ctx.registry = &w.world.registry;
    q.ctx.live = w.world.live.get();
    q.ctx.snapshot = w.snapshot.get();
    q.ctx.viewer = *w.world.registry.Find(w.viewers[i]);
    q.hold = w.world.live->Viewer(q.ctx.viewer);
    q.ctx.state = q.hold.get();
    q.ctx.anchors = BuildAnchors(*q.ctx.state, {}, *q.ctx.options);
    q.ctx.now_ms = w.world.clock.NowMillis();
    GraphSource(q.ctx, &q.set);
    CoEngagementSource(q.ctx, &q.set);
    AnnSource(q.ctx, &q.set);
    WalkSource(q.ctx, &q.set);
    PopularSource(q.ctx, &q.set);
    q.rows = blend.Score(q.ctx, q.set);
    if (q.rows.size() > 100) q.rows.resize(100);
  }
  std::vector<float> out(100 * kNumRankInputs);
  size_t i = 0, rows = 0;
  for (auto _ : state) {
    const Query& q = queries[i++ % queries.size()];
    AssembleRankerInputs(q.ctx, q.set, q.rows, out.data());
    rows += q.rows.size();
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["rows"] = double(rows) / double(state.iterations());
}
BENCHMARK(BM_AssembleRankerInputs);

}  // namespace
}  // namespace affinity::bench
