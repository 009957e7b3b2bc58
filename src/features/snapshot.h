// A batch snapshot: everything the offline pipeline computed at one watermark,
// immutable once loaded. Servers hold the current one behind an atomic pointer
// and swap a newer one in without pausing queries (features/snapshot_manager.h).
// On disk: snapshots/vNNNNNN/{manifest.json, arrays.bin, features/, ann_<kind>.hnsw}
// and snapshots/CURRENT naming the published version (docs/storage.md).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/clock.h"
#include "base/frozen_array.h"
#include "base/ids.h"
#include "features/ann/ann_index.h"
#include "features/feature_registry.h"
#include "features/snapshot_pointer.h"
#include "features/feature_settings.h"

namespace affinity {

struct KindSnapshot {
  uint32_t count = 0;                 // entities of this kind at the watermark
  FrozenArray<float> popularity;      // decayed engagement per dense id
  FrozenArray<float> popularity_pct;  // percentile of the above in [0, 1]
  FrozenArray<uint32_t> popular;      // dense ids, most popular first
  // Co-engagement neighbours (same kind), CSR by dense id.
  FrozenArray<uint32_t> nb_off, nb_ids;
  FrozenArray<float> nb_w;
  // Distinct co-engagers behind each neighbour (saturating at 255); empty in
  // snapshots built before it was kept.
  FrozenArray<uint8_t> nb_sup;
  // Session co-engagement neighbours (same kind, engaged close together in one
  // viewer's timeline), CSR by dense id; empty in snapshots built without them.
  FrozenArray<uint32_t> seq_off, seq_ids;
  FrozenArray<float> seq_w;
  // Entity embeddings (count x dim) and which rows are trained.
  FrozenArray<float> emb;
  FrozenArray<uint8_t> has_emb;
  std::unique_ptr<AnnIndex> ann;      // over rows with has_emb; labels in ann_ids
  FrozenArray<uint32_t> ann_ids;
  // Engagers of each entity (user dense ids), CSR, for random walks.
  FrozenArray<uint32_t> eng_off, eng_users;
  // Graph statistics per dense id: followers, following, engagers.
  FrozenArray<float> followers, following, engagers;

  float Popularity(DenseId id) const { return id < popularity_pct.size() ? popularity_pct[id] : 0.f; }
  const float* Embedding(DenseId id, int dim) const {
    return id < has_emb.size() && has_emb[id] ? &emb[size_t(id) * dim] : nullptr;
  }
};

struct Snapshot {
  std::string version;          // "v000003"
  int64_t created_ms = 0;
  uint64_t watermark_offset = 0;  // events below this offset are included
  int64_t watermark_ts = 0;       // the newest event time included
  int dim = 0;
  std::array<KindSnapshot, kNumKinds> kinds;
  // Viewer (user-as-viewer) embeddings, count(user) x dim.
  FrozenArray<float> viewer_emb;
  FrozenArray<uint8_t> viewer_has_emb;
  // What each user engaged with (Ref bits), CSR, most recent first, for walks.
  FrozenArray<uint32_t> user_eng_off, user_eng;
  // Y^T Y of the entity factors (dim x dim) for folding in new viewers.
  FrozenArray<float> gram;
  double als_lambda = 0.05, als_alpha = 4.0;
  std::string manifest_json;
  std::vector<FeatureGroup> groups;
  // Per group, when its values were computed and by what, when that differs
  // from the snapshot's own (a group recomputed by `affinity backfill`).
  struct GroupStamp {
    int64_t freshness_ms = 0;
    std::string provenance;
  };
  std::map<std::string, GroupStamp> stamps;
  // How loading went (zeros for a snapshot built in this process): seconds by
  // part, and how many bytes of arrays.bin were used in place (mapped) or
  // copied (files of earlier formats, whose arrays are not aligned).
  struct LoadReport {
    double arrays = 0, features = 0, ann = 0, total = 0;
    uint64_t mapped_bytes = 0, copied_bytes = 0;
    // Whether the batch groups came from the feature store's records (a
    // snapshot written before arrays.bin kept their dense copy).
    bool groups_scanned = false;
  } load_report;
  int64_t GroupFreshnessMs(const std::string& group) const;
  std::string GroupProvenance(const std::string& group) const;

  KindSnapshot& kind(Kind k) { return kinds[int(k)]; }
  const KindSnapshot& kind(Kind k) const { return kinds[int(k)]; }
  const float* ViewerEmbedding(DenseId u) const {
    return u < viewer_has_emb.size() && viewer_has_emb[u] ? &viewer_emb[size_t(u) * dim] : nullptr;
  }
  // Groups whose records are older than their TTL at `now_ms` (masked).
  std::vector<std::string> StaleGroups(int64_t now_ms) const;
  bool GroupFresh(const char* group, int64_t now_ms) const;
};

// Writes `snap` as a new version under data_dir/snapshots and publishes it by
// moving `pointer` to it (null: the data dir's CURRENT file). Returns the
// version name.
absl::StatusOr<std::string> PublishSnapshot(const std::string& data_dir, Snapshot& snap,
                                            const std::string& manifest_extra_json, int keep,
                                            std::shared_ptr<SnapshotPointer> pointer = nullptr);
// Publishes `snap` — the version in `from_dir` with one per-entity group
// (popularity or graph) replaced — as a new version, carrying every other part
// over: arrays.bin is a copy of the served file with only the group's sections
// rewritten in place (written whole when that cannot be), the ANN index files
// are hard links to the served ones, and the feature store is the served one
// (its table files hard-linked) with only the group's records written over it
// (`affinity backfill`). Returns the version name.
absl::StatusOr<std::string> PublishSnapshotUpdate(const std::string& data_dir, Snapshot& snap,
                                                  const std::string& from_dir, const std::string& group,
                                                  const std::string& manifest_extra_json, int keep,
                                                  std::shared_ptr<SnapshotPointer> pointer = nullptr);
// Loads the version CURRENT names (nullptr when none is published yet).
absl::StatusOr<std::shared_ptr<const Snapshot>> LoadCurrentSnapshot(const std::string& data_dir);
// A loaded snapshot to change and publish again (`affinity backfill`); without
// its ANN indexes when `with_ann` is false (a backfill carries their files over).
absl::StatusOr<std::shared_ptr<Snapshot>> LoadSnapshotForUpdate(const std::string& dir, bool with_ann = true);
// `settings` ([features.<group>] of the configuration) override declared TTLs.
absl::StatusOr<std::shared_ptr<const Snapshot>> LoadSnapshot(
    const std::string& dir, const std::map<std::string, FeatureGroupSettings>& settings = {});
// The version the data dir's CURRENT file names, or "" when none
// (FileSnapshotPointer, features/snapshot_pointer.h).
std::string CurrentSnapshotVersion(const std::string& data_dir);

}  // namespace affinity
