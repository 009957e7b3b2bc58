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
  // The audit chain (docs/security.md, "The audit chain"): every interval the
  // writer syncs the log and stores a checkpoint of the chain's head, signed
  // with the Ed25519 private key at signing_key (PEM, mode 0600, outside the
  // data dir; `affinity audit keygen`) when one is set.
  std::string signing_key;
  int checkpoint_interval_seconds = 60;

  static constexpr const char* kSection = "audit";
  // Its settings, for the configuration reader (base/settings.h).
  template <class Read>
  void Fields(Read& read) {
    read("audit", "retention_hours", retention_hours);
    read("audit", "signing_key", signing_key);
    read("audit", "checkpoint_interval_seconds", checkpoint_interval_seconds);
  }
  absl::Status Validate() const {
    auto bad = SettingError;
    if (retention_hours < 0) return bad("audit.retention_hours must be >= 0");
    if (checkpoint_interval_seconds < 1) return bad("audit.checkpoint_interval_seconds must be >= 1");
    return absl::OkStatus();
  }
};

}  // namespace affinity
