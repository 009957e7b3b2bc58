// The feature store as an operator reads it (GET /admin/features,
// GET /admin/features/{group}/{entity_id}, `affinity features ...`): every
// declared group with its governance (entity kind, source, features, TTL,
// owner, description, protected, version) and freshness, and one entity's
// record (entity_id, feature_vector, freshness_ts, provenance) read from where
// serving reads it: batch groups from the current snapshot, stream groups from
// the live state (so an accepted event shows at once), the cohort label from
// the entity catalogue.
// Thread safety: safe for concurrent use (reads atomically published state).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/clock.h"
#include "base/component.h"
#include "base/config.h"
#include "features/feature_registry.h"
#include "features/snapshot_manager.h"
#include "state/checkpointer.h"
#include "state/live_state.h"
#include "state/registry.h"
#include "features/feature_settings.h"

namespace affinity {

// A component (base/component.h): GET /admin/features[/{group}/{entity_id}]
// and the affinity_feature_freshness_* gauges.
class FeatureService : public Component {
 public:
  // `settings` are the configuration's [features.<group>] (checked by
  // ApplyFeatureSettings before the server starts).
  FeatureService(const EntityRegistry* registry, const LiveState* live, const SnapshotManager* snapshots,
                 const Clock* clock, int default_dim, std::map<std::string, FeatureGroupSettings> settings);

  // The groups as served now (embedding features sized by the current snapshot).
  std::vector<FeatureGroup> Groups() const;
  std::string ListJson() const;
  // NotFound naming an unknown group, an unknown entity, or an entity the
  // group holds no record for (an entity of another kind, a viewer not in the
  // snapshot yet). The pair groups (viewer_creator, viewer_entity) read the
  // pair (entity_id, with); without `with`, the viewer's tracked pairs are
  // listed under "pairs". `with` on any other group: InvalidArgument.
  absl::StatusOr<std::string> RecordJson(const std::string& group, const std::string& entity_id,
                                         const std::string& with = "") const;
  // The checkpoint the stream groups were restored from and the newest one
  // written, named in their provenance (optional).
  void SetCheckpointer(const Checkpointer* checkpointer) { checkpointer_ = checkpointer; }

  struct Freshness {
    std::string group;
    bool has_value = false;
    double age_seconds = 0;  // now - freshness_ts
    bool stale = false;      // past its TTL (masked at read)
  };
  // Per group, for /metrics.
  std::vector<Freshness> FreshnessByGroup() const;

  std::string_view name() const override { return "features"; }
  void ReportMetrics(MetricsSink& sink) const override;
  std::vector<AdminRoute> Routes() override;

 private:
  int64_t GroupFreshnessTs(const FeatureGroup& g, const Snapshot* snap) const;  // 0: none
  const EntityRegistry* registry_;
  const LiveState* live_;
  const SnapshotManager* snapshots_;
  const Clock* clock_;
  int default_dim_;
  std::map<std::string, FeatureGroupSettings> settings_;
  const Checkpointer* checkpointer_ = nullptr;
};

}  // namespace affinity
