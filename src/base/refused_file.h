// A file the server refused to serve because it failed verification at load (a
// checksum, a truncation, a missing file, CURRENT naming a version that is not
// there): what was refused, why, and what serves instead. SnapshotManager and
// ModelWatcher keep the ones refused now; /readyz, /admin/stats and /metrics
// report them (docs/runbooks/damaged-files.md).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/enum_names.h"

namespace affinity {

// What was refused: a snapshot version or a model version.
enum class RefusedKind { kSnapshot, kModel };
inline constexpr EnumNames<RefusedKind, 2> kRefusedKindNames{
    {{{RefusedKind::kSnapshot, "snapshot"}, {RefusedKind::kModel, "model"}}}};

struct RefusedFile {
  RefusedKind kind = RefusedKind::kSnapshot;
  std::string version;  // "v000003", "m000002"
  std::string reason;   // names the file and the check it failed
  std::string serving;  // the version serving instead ("" none: live counts or the blend)
  int64_t since_ms = 0; // when it was refused (unix ms)
};

// The metric both owners report their refusals under, by kind.
inline constexpr std::string_view kRefusedFilesMetric = "affinity_refused_files";
inline constexpr std::string_view kRefusedFilesHelp =
    "Files refused now because they failed verification at load (kind: snapshot = versions "
    "refused, model = model versions refused); 0 when everything loaded serves";

}  // namespace affinity
