// Where each batch feature group's values lie in a snapshot: the one table
// that loading and publishing a snapshot, `affinity backfill` and the feature
// store view (serving/feature_service.h) read.
//
// A column is one dense array by dense id. It is written into arrays.bin as
// "<kind>.dense.<name>" for every entity kind (a viewer column, users only:
// "dense.<name>"), and into its group's feature-store record as the values
// [first_value, first_value + width). A flag column holds no values: 1 where
// the group holds a record for the entity (an embedding it trained).
// Thread safety: constant data and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/ids.h"
#include "features/snapshot.h"

namespace affinity {

struct BatchColumn {
  const char* group;  // its feature group (features/feature_registry.h)
  const char* name;   // its arrays.bin section: "<kind>.dense.<name>", or "dense.<name>" for a viewer column
  // Exactly one of these is set: an entity column (of every kind) or a viewer one.
  FrozenArray<float> KindSnapshot::*floats = nullptr;
  FrozenArray<uint8_t> KindSnapshot::*flags = nullptr;
  FrozenArray<float> Snapshot::*viewer_floats = nullptr;
  FrozenArray<uint8_t> Snapshot::*viewer_flags = nullptr;
  bool embedding = false;   // dim values per entity (else one)
  size_t first_value = 0;   // where its values start in the group's record
  // Why an entity has no record: a flag column's "<absent> at snapshot
  // <version>", and a viewer column's for an entity that is no user.
  const char* absent = "";
  const char* other_kinds = "";

  bool per_viewer() const { return viewer_floats || viewer_flags; }
  bool is_flag() const { return flags || viewer_flags; }
  // Whether the column holds entities of kind `k` (a viewer column: users only).
  bool Of(int k) const { return !per_viewer() || k == int(Kind::kUser); }
  size_t Width(int dim) const { return embedding ? size_t(dim) : 1; }
  // Its arrays.bin section for kind `k`.
  std::string Section(int k) const;
  // Its array for kind `k` in `snap` (null: a flag column, or not of that kind).
  FrozenArray<float>* Floats(Snapshot& snap, int k) const;
  const FrozenArray<float>* Floats(const Snapshot& snap, int k) const;
  // Its array of flags (null: a value column, or not of that kind).
  FrozenArray<uint8_t>* Flags(Snapshot& snap, int k) const;
  const FrozenArray<uint8_t>* Flags(const Snapshot& snap, int k) const;
};

// Every batch group's columns, a group's in the order of its record's values
// (its flag column, when it has one, after them).
const std::vector<BatchColumn>& BatchColumns();
// The columns of `group` (none for a stream group or an unknown name).
std::vector<const BatchColumn*> BatchColumnsOf(const std::string& group);

// Calls fn(column, section, array, count, width) for each column's array in
// `snap`: every kind's entity columns (kinds in order, a kind's columns in the
// table's), then the viewer columns; `array` is a FrozenArray<float> or a
// FrozenArray<uint8_t> (const when `snap` is), `count` the entities it covers.
template <typename Snap, typename Fn>
void ForEachBatchArray(Snap& snap, Fn&& fn) {
  for (int k = 0; k < kNumKinds; ++k)
    for (const BatchColumn& c : BatchColumns()) {
      if (c.per_viewer()) continue;
      auto& ks = snap.kinds[k];
      if (c.floats) fn(c, c.Section(k), ks.*c.floats, ks.count, c.Width(snap.dim));
      else fn(c, c.Section(k), ks.*c.flags, ks.count, size_t(1));
    }
  const uint32_t users = snap.kinds[int(Kind::kUser)].count;
  for (const BatchColumn& c : BatchColumns()) {
    if (!c.per_viewer()) continue;
    if (c.viewer_floats) fn(c, c.Section(0), snap.*c.viewer_floats, users, c.Width(snap.dim));
    else fn(c, c.Section(0), snap.*c.viewer_flags, users, size_t(1));
  }
}

// The group's per-entity value columns of one kind (the groups a backfill
// recomputes: one value per entity in each).
std::vector<FrozenArray<float>*> GroupValueColumns(KindSnapshot& ks, const std::string& group);

// `group`'s record for `r` as the snapshot holds it (its value columns'
// values in record order). NotFound saying why it has none: an entity newer
// than the snapshot, of a kind the group does not hold, or without a record.
absl::StatusOr<std::vector<float>> BatchGroupRecord(const Snapshot& snap, const std::string& group, Ref r);

}  // namespace affinity
