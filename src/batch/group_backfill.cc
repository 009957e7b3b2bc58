#include "batch/group_backfill.h"

#include <utility>
#include <vector>

#include "base/status.h"
#include "batch/log_stages.h"
#include "features/feature_registry.h"
#include "batch/batch_options.h"

namespace affinity {

bool GroupRecomputable(const std::string& group) { return group == kGroupPopularity || group == kGroupGraph; }

absl::StatusOr<uint64_t> RecomputeGroup(const Store& store, const EntityRegistry& registry,
                                        const BatchOptions& options, const std::string& group, Snapshot* out) {
  if (!GroupRecomputable(group))
    return absl::InvalidArgumentError("'" + group + "' is not a group recomputed on its own");
  const batch_stages::Columns c(registry);
  for (int k = 0; k < kNumKinds; ++k) out->kinds[k].count = c.count[k];
  std::vector<batch_stages::RawPair> raw;
  AFF_RETURN_IF_ERROR(batch_stages::ScanLog(store, c, options, &raw, out));
  const uint64_t events = raw.size();
  if (group == kGroupPopularity)
    batch_stages::Popularity(raw, c, options, out);
  else
    batch_stages::ReducePairs(std::move(raw), c, out);
  return events;
}

}  // namespace affinity
