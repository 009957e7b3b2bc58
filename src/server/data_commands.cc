// `affinity generate`, `import`, `batch`, `events prune` and `audit prune`.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "base/strings.h"
#include "batch/pipeline.h"
#include "data/generate.h"
#include "data/importers.h"
#include "models/logged_training.h"
#include "server/commands.h"
#include "state/ingestor.h"
#include "state/registry.h"
#include "store/store.h"
#include "config/config.h"

namespace affinity {
namespace {

std::string FormatSeconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, s < 0.1 ? "%.3fs" : "%.2fs", s);
  return buf;
}

}  // namespace

int Generate(const std::string& out, GenerateOptions o) {
  GenerateStats stats;
  auto t0 = std::chrono::steady_clock::now();
  auto s = GenerateWorld(o, out, &stats, [](double f) {
    if (Interactive()) std::fprintf(stderr, "\rgenerate: %3.0f%%", f * 100);
  });
  if (Interactive()) std::fprintf(stderr, "\r");
  if (!s.ok()) return Fail(s);
  std::printf("generated %lld users, %lld creators, %lld items, %lld events (%lld follows) in %s (%.1fs)\n",
              (long long)stats.users, (long long)stats.creators, (long long)stats.items, (long long)stats.events,
              (long long)stats.follows, out.c_str(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return 0;
}

// Imports with the server's configuration: events without a weight take the
// configured action weights, and events older than events.retention_hours are
// refused like feedback (the whole import, naming the line).
int Import(const std::string& data, const std::string& format, const std::string& path,
           const std::string& config_path) {
  auto cfg = LoadConfig(config_path);
  if (!cfg.ok()) return Fail(cfg.status());
  namespace fs = std::filesystem;
  std::error_code ec;
  const bool dir_existed = fs::exists(data, ec);
  const bool store_existed = fs::exists(fs::path(data) / "db" / "CURRENT", ec);
  const Clock* clock = SystemClock::Default();
  ImportStats stats;
  const auto t0 = std::chrono::steady_clock::now();
  absl::Status s;
  {
    auto store = OpenRocksStore(data, OpenMode::kPrimary, StoreOptionsFor(*cfg, clock));
    s = store.status();
    EntityRegistry registry;
    if (s.ok()) s = Ingestor::LoadRegistry(**store, &registry);
    if (s.ok()) {
      Ingestor ingestor(store->get(), &registry, nullptr, cfg->actions, clock);
      if (Interactive()) std::fprintf(stderr, "import: reading %s...\n", path.c_str());
      s = ImportDataset(format, path, clock->NowMillis(), &ingestor, &stats);
    }
  }  // the store is closed here
  if (!s.ok()) {
    // A refused import writes nothing; leave no empty store behind either.
    if (!store_existed) fs::remove_all(dir_existed ? fs::path(data) / "db" : fs::path(data), ec);
    return Fail(s);
  }
  if (!stats.ordered) {
    std::printf("note: %s events carry no time or order; batch builds no session neighbours for this data dir\n",
                format.c_str());
  }
  std::printf("imported %zu entities and %zu events from %s (%.1fs)\n", stats.entities, stats.events, path.c_str(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return 0;
}

int Batch(const std::string& data, const std::string& config_path) {
  auto cfg = LoadConfig(config_path);
  if (!cfg.ok()) return Fail(cfg.status());
  // Never two batches at once on one data dir (cron, serve --batch-every, by hand).
  // (A missing data dir is left to the pipeline, which says to import data first.)
  auto batch_lock = HoldBatchLock(data);
  if (!batch_lock.ok()) return Fail(batch_lock.status());
  auto report = RunBatch(data, cfg->batch, StoreOptionsFor(*cfg, nullptr), SystemClock::Default()->NowMillis(), [](const std::string& stage) {
    if (Interactive()) std::fprintf(stderr, "batch: %s done\n", stage.c_str());
  });
  if (!report.ok()) return Fail(report.status());
  std::string stages;
  for (const auto& [name, secs] : report->stage_seconds)
    stages += (stages.empty() ? "" : ", ") + name + " " + FormatSeconds(secs);
  std::printf("published snapshot %s: %llu events, %llu co-engagement pairs in %.1fs (%s)\n", report->version.c_str(),
              (unsigned long long)report->events, (unsigned long long)report->pairs, report->seconds, stages.c_str());
  if (!cfg->ranker.train_in_batch) return 0;
  // The learned ranker, from logged impressions and outcomes.
  auto store = OpenRocksStore(data, OpenMode::kSecondary, StoreOptionsFor(*cfg, SystemClock::Default()));
  if (!store.ok()) return Fail(store.status());
  if (auto s = (*store)->CatchUp(); !s.ok()) return Fail(s);
  EntityRegistry registry;
  if (auto s = Ingestor::LoadRegistry(**store, &registry); !s.ok()) return Fail(s);
  auto trained = TrainFromLoggedImpressions(data, **store, registry, cfg->ranker, cfg->batch.threads);
  if (!trained.ok()) return Fail(trained.status());
  if (!trained->trained) {
    std::printf("ranker: %s\n", trained->note.c_str());
  } else {
    std::printf("ranker: registered model %s from %zu logged responses (%zu rows): validation ndcg@20 %.4f, blend %.4f",
                trained->version.c_str(), trained->groups, trained->rows, trained->ndcg, trained->blend_ndcg);
    if (trained->current_ndcg >= 0) std::printf(", current model %.4f", trained->current_ndcg);
    std::printf("; streaming inputs %s", trained->stream_inputs.c_str());
    if (trained->promoted)
      std::printf("; promoted\n");
    else if (trained->canary)
      std::printf("; starts as a canary on %g%% of viewers, decided after %d of them (`affinity model list` shows "
                  "its state)\n", cfg->ranker.canary_share, cfg->ranker.canary_min_viewers);
    else
      std::printf("; %s\n", trained->note.empty() ? "not promoted (ranker.auto_promote = false)"
                                                   : ("not promoted: " + trained->note).c_str());
  }
  return 0;
}

// Drops audit records (or events) past their retention from disk now (they
// otherwise go as compaction reaches them), e.g. after shortening it.
int Prune(const std::string& data, const std::string& config_path, bool events) {
  auto cfg = LoadConfig(config_path);
  if (!cfg.ok()) return Fail(cfg.status());
  const int hours = events ? cfg->events.retention_hours : cfg->audit.retention_hours;
  const char* what = events ? "events" : "audit records";
  if (hours == 0) {
    std::printf("%s.retention_hours is 0: %s are kept forever, nothing to prune\n", events ? "events" : "audit", what);
    return 0;
  }
  auto store = OpenRocksStore(data, OpenMode::kPrimary, StoreOptionsFor(*cfg, SystemClock::Default()));
  if (!store.ok()) return Fail(store.status());
  auto t0 = std::chrono::steady_clock::now();
  if (auto s = events ? (*store)->PruneEvents() : (*store)->PruneAudits(); !s.ok()) return Fail(s);
  std::printf("pruned %s older than %d hours (%.1fs)\n", what, hours,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return 0;
}

}  // namespace affinity
