// The layout of a snapshot's files that writing and loading share: the
// arrays.bin formats and its section names (docs/storage.md, snapshots/); the
// dense columns of the batch groups are features/batch_columns.h's.
// Internal to features/snapshot*.cc.
#pragma once

#include <string>
#include <string_view>

#include "base/section_file.h"
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

}  // namespace affinity::snapshot_layout
