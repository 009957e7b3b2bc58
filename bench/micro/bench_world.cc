#include "bench_world.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "batch/pipeline.h"
#include "data/generate.h"
#include "data/importers.h"

namespace affinity::bench {
namespace {
int64_t EnvOr(const char* name, int64_t def) {
  const char* v = std::getenv(name);
  return v ? std::atoll(v) : def;
}
}  // namespace

BenchWorld& GetBenchWorld() {
  static BenchWorld* w = [] {
    auto* bw = new BenchWorld();
    GenerateOptions o;
    o.users = EnvOr("AFFINITY_BENCH_USERS", 20000);
    o.creators = EnvOr("AFFINITY_BENCH_CREATORS", 1000);
    o.items = EnvOr("AFFINITY_BENCH_ITEMS", 40000);
    o.events = EnvOr("AFFINITY_BENCH_EVENTS", 1000000);
    o.end_ms = 1'767'225'600'000;  // a fixed history: the same world in every run
    std::string src = bw->world.dir / "src";
    if (!GenerateWorld(o, src, nullptr).ok()) std::abort();
    bw->world.clock.Set(o.end_ms);
    // As a server wires it: creators' streaming counts and viewer-creator recency.
    bw->world.live->SetCreatorOf([bw](Ref r) { return r.kind() == Kind::kItem ? bw->world.registry.CreatorOf(r) : Ref(); });
    if (!ImportDataset("native", src, o.end_ms, bw->world.ingestor.get(), nullptr).ok()) std::abort();
    auto snap = BuildSnapshot(*bw->world.store, bw->world.registry, bw->world.config.batch, o.end_ms, nullptr);
    if (!snap.ok()) std::abort();
    bw->snapshot = std::move(*snap);
    bw->engine = std::make_unique<QueryEngine>(bw->world.config.serving, &bw->world.registry, bw->world.live.get(),
                                               nullptr, nullptr, SystemClock::Default());
    for (int i = 0; i < 1000; ++i) bw->viewers.push_back(absl::StrCat("u", (i * 7919) % o.users));
    std::fprintf(stderr, "bench world: %lld users, %lld creators, %lld items, %lld events\n", (long long)o.users,
                 (long long)o.creators, (long long)o.items, (long long)o.events);
    return bw;
  }();
  return *w;
}

}  // namespace affinity::bench
