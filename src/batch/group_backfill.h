// Recomputes one per-entity batch feature group from the event log, and only
// that group: `affinity backfill` replaces it in the served snapshot and carries
// every other part over (features/snapshot.h, PublishSnapshotUpdate), instead of
// running the whole pipeline (ALS, indexes) to keep two columns.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "base/config.h"
#include "features/snapshot.h"
#include "state/registry.h"
#include "store/store.h"
#include "batch/batch_options.h"

namespace affinity {

// Whether RecomputeGroup can recompute `group` on its own (popularity, graph).
bool GroupRecomputable(const std::string& group);

// Fills out->kinds' columns of `group` — popularity: popularity, popularity_pct
// and popular; graph: followers, following and engagers — from the store's log
// (within options' window), exactly as `affinity batch` computes them, for the
// registry's entities (counts set in out->kinds), and out's watermark. Returns
// the number of events it read.
absl::StatusOr<uint64_t> RecomputeGroup(const Store& store, const EntityRegistry& registry,
                                        const BatchOptions& options, const std::string& group, Snapshot* out);

}  // namespace affinity
