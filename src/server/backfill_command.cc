// `affinity backfill --data DIR --group NAME [--from TS] [--to TS] [--force]`:
// recomputes one batch feature group from the event log (over a window when
// given), checks it against the version being served (rows, value ranges),
// and publishes the current snapshot again with that group replaced, its
// freshness and provenance saying it was backfilled. Only the group's stages
// of the pipeline run; every other part of the served version is carried over
// (PublishSnapshotUpdate). Runs beside a live server, which swaps the new
// version in; never beside another batch.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "base/json_writer.h"
#include "batch/group_backfill.h"
#include "features/batch_columns.h"
#include "features/feature_registry.h"
#include "features/snapshot.h"
#include "server/commands.h"
#include "state/ingestor.h"
#include "state/registry.h"
#include "store/store.h"
#include "batch/batch_options.h"
#include "config/config.h"

namespace affinity {
namespace {

struct GroupValues {
  size_t rows = 0;  // entities with a non-zero value
  double min = 0, max = 0;
  bool finite = true;
};

GroupValues Measure(Snapshot& s, const std::string& group) {
  GroupValues v;
  bool first = true;
  for (auto& ks : s.kinds) {
    auto cols = GroupValueColumns(ks, group);
    for (uint32_t i = 0; i < ks.count; ++i) {
      bool any = false;
      for (auto* c : cols) {
        const float x = i < c->size() ? (*c)[i] : 0.f;
        if (!std::isfinite(x)) v.finite = false;
        any = any || x != 0;
        if (first || x < v.min) v.min = x;
        if (first || x > v.max) v.max = x;
        first = false;
      }
      v.rows += any;
    }
  }
  return v;
}

std::string Stamp(int64_t ms) {
  char buf[32];
  std::time_t t = std::time_t(ms / 1000);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

}  // namespace

int Backfill(const BackfillArgs& a) {
  auto cfg = LoadConfig(a.config_path);
  if (!cfg.ok()) return Fail(cfg.status());
  const int64_t now = SystemClock::Default()->NowMillis();
  // Which group: the batch groups whose values are per-entity columns.
  const std::vector<FeatureGroup> groups = DeclaredFeatureGroups(cfg->batch.als_factors);
  const FeatureGroup* g = FindFeatureGroup(groups, a.group);
  if (!g) {
    std::string names;
    for (const auto& x : groups) names += (names.empty() ? "" : ", ") + x.name;
    return Fail(absl::NotFoundError("no feature group '" + a.group + "' (groups: " + names + ")"));
  }
  if (g->source != FeatureSource::kBatch)
    return Fail(absl::InvalidArgumentError("'" + a.group + "' is a stream group: the server keeps it from every "
                                           "accepted event (and its checkpoint); backfill recomputes batch groups"));
  if (!GroupRecomputable(a.group))
    return Fail(absl::InvalidArgumentError("'" + a.group + "' is one factorisation with the other embedding group and "
                                           "the ANN index: recompute them together with `affinity batch`"));
  if (a.from_ms > 0 && a.to_ms > 0 && a.from_ms > a.to_ms)
    return Fail(absl::InvalidArgumentError("--from " + std::to_string(a.from_ms) + " is after --to " +
                                           std::to_string(a.to_ms)));
  if (a.to_ms > 0 && a.to_ms > now + 60000)
    return Fail(absl::InvalidArgumentError("--to " + std::to_string(a.to_ms) + " is in the future"));
  const int64_t retention_ms = int64_t(cfg->events.retention_hours) * 3600 * 1000;
  if (retention_ms > 0 && a.from_ms > 0 && a.from_ms < now - retention_ms)
    return Fail(absl::InvalidArgumentError("--from " + std::to_string(a.from_ms) + " is outside the event log's retention (" +
                                           std::to_string(cfg->events.retention_hours) +
                                           " h, events.retention_hours): those events are gone"));
  // Never beside a batch (or another backfill) on the same data dir.
  std::error_code ec;
  if (!std::filesystem::is_directory(a.data, ec)) return Fail(RequireDataDir(a.data));
  auto batch_lock = HoldBatchLock(a.data);
  if (!batch_lock.ok()) return Fail(batch_lock.status());
  const std::string current_version = CurrentSnapshotVersion(a.data);
  if (current_version.empty())
    return Fail(absl::FailedPreconditionError("no snapshot yet to backfill into: run `affinity batch` first"));
  const std::string current_dir = a.data + "/snapshots/" + current_version;
  auto current = LoadSnapshotForUpdate(current_dir, /*with_ann=*/false);  // its index files are carried over
  if (!current.ok()) return Fail(current.status());
  // Recompute from the log (a secondary: a running server is not disturbed).
  auto store = OpenRocksStore(a.data, OpenMode::kSecondary, StoreOptionsFor(*cfg, SystemClock::Default()));
  if (!store.ok()) return Fail(store.status());
  if (auto s = (*store)->CatchUp(); !s.ok()) return Fail(s);
  EntityRegistry registry;
  if (auto s = Ingestor::LoadRegistry(**store, &registry); !s.ok()) return Fail(s);
  BatchOptions options = cfg->batch;
  options.window_from_ms = a.from_ms;
  options.window_to_ms = a.to_ms;
  // Only this group's stages of the pipeline (the scan, then popularity or the
  // pairs' graph statistics): embeddings, indexes and neighbours are carried over.
  auto fresh = std::make_shared<Snapshot>();
  auto events = RecomputeGroup(**store, registry, options, a.group, fresh.get());
  if (!events.ok()) return Fail(events.status());
  const uint64_t event_count = *events;
  if (event_count == 0)
    return Fail(absl::FailedPreconditionError("no events in the window: nothing to recompute (nothing published)"));
  // Check against the version being served.
  Snapshot& cur = **current;
  const GroupValues before = Measure(cur, a.group);
  // The recomputed columns, cut to the served snapshot's entities (newer ones
  // come with the next batch, with every other group).
  for (int k = 0; k < kNumKinds; ++k) {
    KindSnapshot &to = cur.kinds[k], &from = fresh->kinds[k];
    auto dst = GroupValueColumns(to, a.group), src = GroupValueColumns(from, a.group);
    for (size_t c = 0; c < dst.size(); ++c) {
      std::vector<float> v(to.count, 0.f);
      std::copy_n(src[c]->begin(), std::min<size_t>(to.count, src[c]->size()), v.begin());
      *dst[c] = std::move(v);
    }
    if (a.group == kGroupPopularity) {
      std::vector<uint32_t> popular;
      for (uint32_t id : from.popular)
        if (id < to.count) popular.push_back(id);
      to.popular = std::move(popular);
    }
  }
  const GroupValues after = Measure(cur, a.group);
  std::printf("backfill %s over [%s, %s]: %llu events; rows %zu -> %zu; values [%g, %g] -> [%g, %g]\n", a.group.c_str(),
              a.from_ms > 0 ? Stamp(a.from_ms).c_str() : "start", a.to_ms > 0 ? Stamp(a.to_ms).c_str() : "now",
              (unsigned long long)event_count, before.rows, after.rows, before.min, before.max, after.min, after.max);
  if (!after.finite) return Fail(absl::DataLossError("the recomputed values are not all finite: nothing published"));
  if (after.rows == 0) return Fail(absl::FailedPreconditionError("the recomputed group is empty: nothing published"));
  if (after.min < 0)  // counts, degrees and percentiles: never negative
    return Fail(absl::DataLossError("the recomputed group has negative values (min " + std::to_string(after.min) +
                                    "): nothing published"));
  const double change = before.rows ? std::fabs(double(after.rows) - double(before.rows)) / double(before.rows) : 1;
  if (change > 0.5 && !a.force)
    return Fail(absl::FailedPreconditionError(
        "rows changed by " + std::to_string(int(change * 100)) + "% against " + current_version +
        ": nothing published (a narrow window? --force publishes anyway)"));
  cur.stamps[a.group] = {now, "backfill of " + a.group + " over events [" +
                                  (a.from_ms > 0 ? Stamp(a.from_ms) : std::string("start")) + ", " +
                                  (a.to_ms > 0 ? Stamp(a.to_ms) : std::string("now")) + "] (" +
                                  std::to_string(event_count) + " events) at " + Stamp(now) + ", replacing " +
                                  current_version + "'s"};
  JsonWriter extra;
  extra.BeginObject().Key("backfill").BeginObject().Key("group").String(a.group);
  extra.Key("from_ms").Int(a.from_ms).Key("to_ms").Int(a.to_ms).Key("events").Uint(event_count);
  extra.Key("replaces").String(current_version).Key("rows_before").Uint(before.rows).Key("rows_after").Uint(after.rows);
  extra.EndObject().EndObject();
  auto version = PublishSnapshotUpdate(a.data, cur, current_dir, a.group, extra.Release(), cfg->batch.keep_snapshots);
  if (!version.ok()) return Fail(version.status());
  std::printf("published snapshot %s: %s backfilled; every other group as in %s\n", version->c_str(), a.group.c_str(),
              current_version.c_str());
  return 0;
}

}  // namespace affinity
