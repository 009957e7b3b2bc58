#include "admin/service_status.h"

#include <algorithm>

#include "audit/audit_record.h"

namespace affinity {

StatusReport ServiceStatus::Report() const {
  StatusReport r;
  const int64_t now = clock_->NowMillis();
  r.events = store_->NextOffset();
  r.entities = registry_->Total();
  for (int k = 0; k < kNumKinds; ++k) r.entities_by_kind[k] = registry_->Count(Kind(k));
  if (auto snap = snapshots_->Get()) {
    r.has_snapshot = true;
    r.snapshot = snap->version;
    r.snapshot_age_seconds = double(now - snap->created_ms) / 1000.0;
    r.snapshot_watermark_offset = snap->watermark_offset;
    r.event_lag_seconds = double(std::max<int64_t>(0, live_->last_event_ts() - snap->watermark_ts)) / 1000.0;
    r.stale_feature_groups = snap->StaleGroups(now);
  }
  r.snapshot_swaps = snapshots_->swaps();
  r.snapshot_error = snapshots_->last_error();
  r.live_events_applied = live_->events_applied();
  r.audit_dropped = audit_->dropped();
  r.audit_write_errors = audit_->write_errors();
  r.store = store_->GetUsage();
  return r;
}

absl::StatusOr<std::optional<std::string>> ServiceStatus::AuditRecord(const std::string& request_id) const {
  auto rec = audit_->Get(request_id);
  if (!rec.ok()) return rec.status();
  if (!rec->has_value()) return std::optional<std::string>();
  auto readable = ExpandAuditRecord(**rec);
  if (!readable.ok()) return readable.status();
  return std::optional<std::string>(*std::move(readable));
}

}  // namespace affinity
