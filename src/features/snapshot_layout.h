// The layout of a snapshot's files that writing and loading share: the
// arrays.bin formats, its section names, and the dense columns of the batch
// groups with where the feature store keeps each (docs/storage.md, snapshots/).
// Internal to features/snapshot*.cc.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/section_file.h"
#include "features/feature_registry.h"
#include "features/snapshot.h"

namespace affinity::snapshot_layout {

// arrays.bin (base/section_file.h). Version 1 checked each section's data
// only; version 2's checksum also covers the section's name and length;
// version 3 aligns each section's data, so that a server maps the file and
// uses the arrays where they are instead of copying them. All are read.
inline constexpr SectionFormat kArraysV1{std::string_view("AFFSNAP1", 8), false, 1};
inline constexpr SectionFormat kArraysV2{std::string_view("AFFSNAP2", 8), true, 1};
inline constexpr SectionFormat kArrays{std::string_view("AFFSNAP3", 8), true, 64};

inline std::string KindKey(int k, const char* name) { return std::string(KindName(Kind(k))) + "." + name; }

// The batch groups' values as dense arrays by dense id, as a server holds
// them, written into arrays.bin beside the feature store's records (the same
// values, from the same snapshot, in the same publish). A server maps these;
// snapshots written before they were kept are read from the feature store.
// Each column also says where the feature store keeps it: which values of its
// group's record (a flag column: 1 where the group holds a record).
struct DenseGroup {
  const char* name;
  FrozenArray<float> KindSnapshot::*floats = nullptr;
  FrozenArray<uint8_t> KindSnapshot::*flags = nullptr;
  size_t width = 1;  // values per entity (dim for embeddings)
  const char* store_group;
  size_t first_value = 0;  // its values in the record: [first_value, first_value + width)
};
inline std::vector<DenseGroup> DenseGroups(int dim) {
  return {{"emb", &KindSnapshot::emb, nullptr, size_t(dim), kGroupEntityEmbedding, 0},
          {"has_emb", nullptr, &KindSnapshot::has_emb, 1, kGroupEntityEmbedding},
          {"popularity", &KindSnapshot::popularity, nullptr, 1, kGroupPopularity, 0},
          {"popularity_pct", &KindSnapshot::popularity_pct, nullptr, 1, kGroupPopularity, 1},
          {"followers", &KindSnapshot::followers, nullptr, 1, kGroupGraph, 0},
          {"following", &KindSnapshot::following, nullptr, 1, kGroupGraph, 1},
          {"engagers", &KindSnapshot::engagers, nullptr, 1, kGroupGraph, 2}};
}

}  // namespace affinity::snapshot_layout
