// Checks the audit chain (audit/audit_chain.h) against the stored records:
// what `affinity audit verify` runs over a store opened read-only (a
// secondary instance, safe beside a running server). It names the first
// altered, inserted, reordered, missing or truncated record or entry, and
// counts what is accepted: intact records, redacted ones (a later redaction
// entry names them), expired ones (older than the retention), records written
// before the chain began, and records a later record of the same request id
// replaced.
// Thread safety: a pure function of the store's contents.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "audit/audit_chain.h"
#include "store/store.h"

namespace affinity {

struct AuditVerifyOptions {
  const CheckpointVerifier* key = nullptr;  // null: signatures are not checked
  int64_t now_ms = 0;                       // expiry is judged at this time
  // A checkpoint copied off the box (a logged "audit checkpoint" line): the
  // chain must hold exactly this head at this sequence.
  std::optional<std::pair<uint64_t, std::string>> expect;  // sequence, head in hex
};

struct AuditVerifyReport {
  std::string failure;  // the first tampering found; "" when the chain is intact
  uint64_t first_sequence = 0, last_sequence = 0;  // the entries held (0 when none)
  uint64_t records = 0, redacted = 0, expired = 0, before_chain = 0, replaced = 0;
  std::vector<std::string> redactions;  // "q_… (sequence n, redacted at m)"
  uint64_t checkpoints = 0, signed_checkpoints = 0, verified_signatures = 0, other_key_signatures = 0;
  uint64_t last_checkpoint = 0;
  bool last_checkpoint_signed = false;
  std::string head_hex;
  bool ok() const { return failure.empty(); }
  // The one-line summary of an intact chain.
  std::string Summary(bool key_given) const;
};

absl::StatusOr<AuditVerifyReport> VerifyAuditChain(const Store& store, const AuditVerifyOptions& options);

}  // namespace affinity
