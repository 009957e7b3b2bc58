// [audit]: the audit log's retention (its owner: audit/audit_log.h).
#pragma once

#include <cstdint>
#include <string>
#include "absl/status/status.h"
#include "base/settings.h"

namespace affinity {

// The audit log (every response with its explanations, `GET /admin/audit/{id}`).
struct AuditOptions {
  int retention_hours = 2160;  // records older than this expire (90 days; 0: kept forever).
                               // `batch` trains on logged responses, so keep this longer than
                               // the span of impressions a model should learn from.

  static constexpr const char* kSection = "audit";
  // Its settings, for the configuration reader (base/settings.h).
  template <class Read>
  void Fields(Read& read) {
    read("audit", "retention_hours", retention_hours);
  }
  absl::Status Validate() const {
    auto bad = SettingError;
    if (retention_hours < 0) return bad("audit.retention_hours must be >= 0");
    return absl::OkStatus();
  }
};

}  // namespace affinity
