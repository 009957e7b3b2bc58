// What a serving process reports about itself (GET /admin/stats, the gauges of
// /metrics, GET /admin/audit/{id}), assembled here from the store, the
// registry, the live state, the snapshot and the audit log, so that the HTTP
// layer reads one provider instead of every component.
// Thread safety: safe for concurrent use.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "audit/audit_log.h"
#include "base/clock.h"
#include "base/component.h"
#include "base/ids.h"
#include "base/refused_file.h"
#include "features/snapshot_manager.h"
#include "state/live_state.h"
#include "state/registry.h"
#include "store/store.h"

namespace affinity {

struct StatusReport {
  uint64_t events = 0;  // ever appended to the log
  uint64_t entities = 0;
  std::array<uint64_t, kNumKinds> entities_by_kind{};
  std::string snapshot;  // "" before the first batch
  uint64_t snapshot_swaps = 0;
  bool has_snapshot = false;
  double snapshot_age_seconds = 0;
  uint64_t snapshot_watermark_offset = 0;
  double event_lag_seconds = 0;  // newest live event - the snapshot's newest event
  std::vector<std::string> stale_feature_groups;
  std::string snapshot_error;  // "" unless the last look for a snapshot failed
  uint64_t live_events_applied = 0;
  uint64_t audit_dropped = 0, audit_write_errors = 0;
  Store::Usage store;
};

// A component (base/component.h): the process's own members of /admin/stats
// (events, entities, the snapshot, the audit log, the store), "snapshot" in
// /readyz, the snapshot and store gauges, and GET /admin/audit/{request_id}.
class ServiceStatus : public Component {
 public:
  ServiceStatus(const Store* store, const EntityRegistry* registry, const LiveState* live,
                const SnapshotManager* snapshots, const AuditLog* audit, const Clock* clock)
      : store_(store), registry_(registry), live_(live), snapshots_(snapshots), audit_(audit), clock_(clock) {}

  StatusReport Report() const;
  // The audit record of `request_id` made readable (nullopt when none).
  absl::StatusOr<std::optional<std::string>> AuditRecord(const std::string& request_id) const;
  // The snapshot queries read now (null before the first batch).
  std::shared_ptr<const Snapshot> CurrentSnapshot() const { return snapshots_->Get(); }
  // The snapshot versions refused at load now (empty once CURRENT's serves).
  std::vector<RefusedFile> RefusedSnapshots() const { return snapshots_->refused(); }

  std::string_view name() const override { return "status"; }
  void WriteStats(JsonWriter& w) const override;
  void WriteReady(JsonWriter& w) const override;
  void ReportMetrics(MetricsSink& sink) const override;
  std::vector<AdminRoute> Routes() override;

 private:
  const Store* store_;
  const EntityRegistry* registry_;
  const LiveState* live_;
  const SnapshotManager* snapshots_;
  const AuditLog* audit_;
  const Clock* clock_;
};

}  // namespace affinity
