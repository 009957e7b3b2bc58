// The stages of the offline pipeline that read the event log: the scan into
// (viewer, entity) events, decayed popularity, and the reduction to one pair per
// (viewer, entity) with the graph statistics. `affinity batch` runs them before
// the embeddings and indexes; `affinity backfill` runs only the ones a group
// needs (batch/group_backfill.h).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "base/config.h"
#include "events/event.h"
#include "features/snapshot.h"
#include "state/registry.h"
#include "store/event_log.h"
#include "batch/batch_options.h"

namespace affinity::batch_stages {

struct RawPair {
  uint32_t viewer;
  uint32_t col;
  int64_t ts;
  uint64_t offset;
  float weight;
  Action action;
};

struct Pair {
  uint32_t viewer;
  uint32_t col;
  float weight;
  int64_t last_ts;
};

// Dense ids of every kind side by side: the columns of the viewer x entity
// matrix (users, then creators, then items).
struct Columns {
  explicit Columns(const EntityRegistry& registry) {
    for (int k = 0; k < kNumKinds; ++k) count[k] = registry.Count(Kind(k));
    base = {0, count[0], count[0] + count[1]};
    cols = count[0] + count[1] + count[2];
  }
  uint32_t Col(Ref r) const { return base[int(r.kind())] + r.id(); }
  Ref RefOf(uint32_t c) const {
    if (c >= base[2]) return Ref(Kind::kItem, c - base[2]);
    if (c >= base[1]) return Ref(Kind::kCreator, c - base[1]);
    return Ref(Kind::kUser, c);
  }
  std::array<uint32_t, kNumKinds> count{}, base{};
  uint32_t cols = 0;
};

// 1. The log up to the watermark, as raw (viewer, column) pairs: every event
// of an entity registered when the scan began, within the options' window.
absl::Status ScanLog(const EventLog& log, const Columns& c, const BatchOptions& o, std::vector<RawPair>* raw_out,
                     Snapshot* snap);
// 2. Decayed popularity per kind, relative to the newest event: fills each
// kind's popularity, popularity_pct and popular.
void Popularity(const std::vector<RawPair>& raw, const Columns& c, const BatchOptions& o, Snapshot* snap);
// 3. One (viewer, entity) pair each: summed positive weight, the final follow
// state, dropped when hidden; fills each kind's followers, following, engagers.
std::vector<Pair> ReducePairs(std::vector<RawPair> raw, const Columns& c, Snapshot* snap);

}  // namespace affinity::batch_stages
