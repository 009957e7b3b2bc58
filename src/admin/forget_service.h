// Forgetting a person (docs/security.md, "Forget"; POST /admin/viewers/{id}/forget
// and `affinity forget`): one call that removes what the service holds about
// them, in this order: their audit records and every other record naming them
// are redacted through the audit log (the chain keeps their entries and
// reports them as redacted); the store deletes their events, follows,
// experiment counters and index entries and leaves a tombstone
// (Store::Forget); the registry unmaps their id; the live state takes them out
// (LiveState::Forget); a fresh checkpoint replaces the one that held them;
// and a batch is asked for, so that the snapshots are rebuilt without them.
// On a stopped server the registry and live state are absent: the checkpoint
// is removed instead (the next start replays the log, which no longer holds
// them).
// Thread safety: Forget calls are serialised; safe beside serving.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "audit/audit_log.h"
#include "base/clock.h"
#include "base/component.h"
#include "base/json_writer.h"
#include "state/live_state.h"
#include "state/registry.h"
#include "store/store.h"

namespace affinity {

struct ForgetOutcome {
  std::string id;
  Ref ref;
  uint64_t events = 0, follows = 0, experiment_counters = 0;
  uint64_t audit_records = 0;         // served to them, redacted
  uint64_t audit_records_naming = 0;  // served to others and naming them, redacted
  std::string checkpoint;             // "written", "removed", "none" or why it failed
  std::string batch;                  // "started", or why not
  double seconds = 0;
};

// {"forgotten":"<id>","removed":{"events":N,...},"checkpoint":"…","batch":"…","seconds":S}
void WriteForgetOutcome(JsonWriter& w, const ForgetOutcome& o);

// The stored audit records whose readable form holds one of `terms` (a
// person's id and display name) as a whole word: as the viewer, a result, a
// name in a reason. A scan of every record.
absl::StatusOr<std::vector<std::string>> AuditRecordsNaming(const Store& store, const std::vector<std::string>& terms);
// The display name in an entity's attributes ({"name": …}; "" when none):
// what reasons call it by.
std::string DisplayNameIn(std::string_view attributes);

// A component (base/component.h) for its admin route, POST
// /admin/viewers/{id}/forget: 200 with the outcome, 404 for an unknown id.
class ForgetService : public Component {
 public:
  struct Parts {
    Store* store = nullptr;
    AuditLog* audit = nullptr;
    EntityRegistry* registry = nullptr;  // null on a stopped server
    LiveState* live = nullptr;           // null on a stopped server
    // Replaces the live state's checkpoint ("written", "removed", ...).
    std::function<absl::StatusOr<std::string>()> checkpoint;
    // Asks for a batch: "started", or why not.
    std::function<std::string()> start_batch;
    const Clock* clock = nullptr;
  };
  explicit ForgetService(Parts parts) : parts_(std::move(parts)) {}
  // NotFound when the store holds no entity with this id.
  absl::StatusOr<ForgetOutcome> Forget(const std::string& id);

  std::string_view name() const override { return "forget"; }
  std::vector<AdminRoute> Routes() override;

 private:
  absl::Status RedactAudit(const std::string& id, const std::string& name, ForgetOutcome* out);
  // The display name of the entity with this id ("" when none or unknown).
  absl::StatusOr<std::string> NameOf(const std::string& id) const;
  Parts parts_;
  std::mutex mu_;
};

}  // namespace affinity
