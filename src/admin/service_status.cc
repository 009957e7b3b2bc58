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


void ServiceStatus::WriteStats(JsonWriter& w) const {
  const StatusReport r = Report();
  w.Key("events").Uint(r.events);
  w.Key("entities").Uint(r.entities);
  w.Key("entities_by_kind").BeginObject();
  for (int k = 0; k < kNumKinds; ++k) w.Key(KindName(Kind(k))).Uint(r.entities_by_kind[k]);
  w.EndObject();
  w.Key("snapshot").String(r.snapshot);
  w.Key("snapshot_swaps").Uint(r.snapshot_swaps);
  if (r.has_snapshot) {
    w.Key("snapshot_age_seconds").Double(r.snapshot_age_seconds);
    w.Key("snapshot_watermark_offset").Uint(r.snapshot_watermark_offset);
    w.Key("stale_feature_groups").BeginArray();
    for (const auto& g : r.stale_feature_groups) w.String(g);
    w.EndArray();
  }
  if (!r.snapshot_error.empty()) w.Key("snapshot_error").String(r.snapshot_error);
  w.Key("live_events_applied").Uint(r.live_events_applied);
  w.Key("audit_dropped").Uint(r.audit_dropped);
  w.Key("audit_write_errors").Uint(r.audit_write_errors);
  w.Key("store").BeginObject();
  w.Key("disk_bytes").Uint(r.store.disk_bytes).Key("audit_disk_bytes").Uint(r.store.audit_disk_bytes);
  w.Key("memtable_bytes").Uint(r.store.memtable_bytes);
  w.Key("pending_compaction_bytes").Uint(r.store.pending_compaction_bytes);
  w.Key("running_compactions").Uint(r.store.running_compactions);
  w.EndObject();
}

void ServiceStatus::WriteReady(JsonWriter& w) const {
  auto snap = CurrentSnapshot();
  w.Key("snapshot").String(snap ? snap->version : "");
}

void ServiceStatus::ReportMetrics(MetricsSink& sink) const {
  const StatusReport r = Report();
  // Before the first snapshot both read 0 (as a gauge never set does).
  sink.Gauge("affinity_snapshot_age_seconds", "Age of the serving batch snapshot",
             r.has_snapshot ? r.snapshot_age_seconds : 0);
  sink.Gauge("affinity_snapshot_event_lag_seconds", "Newest event time minus the snapshot watermark time",
             r.has_snapshot ? r.event_lag_seconds : 0);
  constexpr std::string_view kDisk = "Live table files of the data dir's store, by part";
  sink.Gauge("affinity_store_disk_bytes", kDisk, {{"part", "all"}}, double(r.store.disk_bytes));
  sink.Gauge("affinity_store_disk_bytes", kDisk, {{"part", "audit"}}, double(r.store.audit_disk_bytes));
  sink.Gauge("affinity_store_pending_compaction_bytes", "Bytes the store's compactions are estimated to still rewrite",
             double(r.store.pending_compaction_bytes));
}

std::vector<AdminRoute> ServiceStatus::Routes() {
  AdminRoute audit{"GET", "/admin/audit/{request_id*}", "audit"};
  audit.handle = [this](const AdminRequest& req) -> absl::StatusOr<AdminReply> {
    const std::string& id = req.args.at("request_id");
    if (absl::Status bad = CheckExternalId(id, "request_id (in the path)"); !bad.ok()) return bad;
    auto rec = AuditRecord(id);
    if (!rec.ok()) return rec.status();
    if (!rec->has_value()) return absl::NotFoundError("no audit record for request_id '" + id + "'");
    return AdminReply{200, **std::move(rec)};
  };
  return {std::move(audit)};
}

}  // namespace affinity
