// The durable state of one data dir: the event log (the feedback topic), the
// entity registry, the follow graph and the audit log. The embedded backend is
// RocksDB (rocks_store.cc, opened by OpenRocksStore below); see docs/storage.md for the on-disk format.
// Thread safety: all methods are safe for concurrent use.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "base/clock.h"
#include "base/ids.h"
#include "events/event.h"
#include "store/event_log.h"

namespace affinity {

class FaultInjection;

struct EntityRecord {
  Ref ref;
  std::string ext_id;
  Ref creator;             // items only; invalid otherwise
  std::string cohort;      // free label for fairness reporting
  std::string attributes;  // raw JSON object or ""
  std::vector<std::string> labels{};  // for query filters (labels_any, labels_none)
  int64_t expires_at = 0;  // unix ms after which it is never recommended; 0: never expires
  bool deleted = false;    // removed (moderation): never recommended again; an upsert restores it

  // Whether a query at now_ms may return it.
  bool Recommendable(int64_t now_ms) const { return !deleted && (expires_at == 0 || now_ms < expires_at); }
};

enum class OpenMode {
  kPrimary,    // read-write, creates the dir; one process at a time
  kSecondary,  // read-only follower of a primary that may be running (batch)
};

class Store : public EventLog {
 public:

  // Writes entity records atomically and durably, with `key`'s record if given.
  virtual absl::Status PutEntities(const std::vector<EntityRecord>& entities,
                                   const IdempotencyRecord* key = nullptr) = 0;

  // The record a write with this Idempotency-Key left, or none: never written,
  // or older than the idempotency window (it reads as absent at once and
  // compaction removes it).
  virtual absl::StatusOr<std::optional<IdempotencyRecord>> GetIdempotencyRecord(const std::string& key) const = 0;
  // Removes every expired idempotency record now (compacts them).
  virtual absl::Status PruneIdempotencyRecords() = 0;

  virtual absl::Status ScanEntities(const std::function<void(const EntityRecord&)>& fn) const = 0;
  virtual absl::Status ScanFollows(const std::function<void(Ref, Ref, int64_t)>& fn) const = 0;

  // Audit records, keyed by request id. Put is durable against process crash
  // (WAL, no fsync per record); PutAudits writes many in one batch. Each record
  // is stamped with its write time; past the store's retention it reads as
  // absent and compaction removes it.
  using AuditRecord = std::pair<std::string, std::string>;  // request id, JSON
  // One write of the audit log's writer (audit/audit_log.h), atomic: records
  // put (stamped written_ms; 0: now), records deleted (redacted), and keys of
  // the audit chain (audit/audit_chain.h owns them) put or erased in its own
  // ordered key space, which no retention expires. With sync the write is
  // fsynced, and with it every write before it.
  struct AuditWrite {
    int64_t written_ms = 0;
    std::vector<AuditRecord> records;
    std::vector<std::string> deleted;                         // request ids
    std::vector<std::pair<std::string, std::string>> chain;   // key, value
    std::vector<std::pair<std::string, std::string>> erased;  // chain key ranges [first, second)
    bool sync = false;
    // The viewer index (viewer id, request id): written with the records, in
    // the same write, so that forgetting a person finds their records.
    std::vector<std::pair<std::string, std::string>> index{};
  };
  virtual absl::Status WriteAudit(const AuditWrite& write) = 0;
  absl::Status PutAudits(const std::vector<AuditRecord>& records) {
    AuditWrite w;
    w.records = records;
    return WriteAudit(w);
  }
  absl::Status PutAudit(const std::string& request_id, const std::string& json) {
    return PutAudits({AuditRecord(request_id, json)});
  }
  virtual absl::StatusOr<std::optional<std::string>> GetAudit(const std::string& request_id) const = 0;
  // A record as stored, expired or not: its write time (0: unknown) and bytes.
  using StoredAudit = std::pair<int64_t, std::string>;
  virtual absl::StatusOr<std::optional<StoredAudit>> GetStoredAudit(const std::string& request_id) const = 0;
  // Every stored record, expired ones too: request id, write time, bytes.
  virtual absl::Status ScanStoredAudits(
      const std::function<void(std::string_view id, int64_t written_ms, std::string_view bytes)>& fn) const = 0;
  // The audit chain's keys in order from `from` on, while fn returns true.
  virtual absl::Status ScanAuditChain(const std::string& from,
                                      const std::function<bool(std::string_view key, std::string_view value)>& fn) const = 0;
  // The last chain key and value whose key starts with prefix; none: nullopt.
  virtual absl::StatusOr<std::optional<std::pair<std::string, std::string>>> LastAuditChainEntry(
      const std::string& prefix) const = 0;
  // Audit records older than this expire (0: kept forever).
  virtual int64_t AuditRetentionMs() const = 0;
  // The request ids of the audit records served to this viewer (the viewer
  // index; entries expire with their records), in key order.
  virtual absl::StatusOr<std::vector<std::string>> AuditRecordsOf(const std::string& viewer_id) const = 0;

  // Forgetting a person (docs/security.md, "Forget"). In one synced write:
  // every event whose viewer or entity is theirs, the follows from and to
  // them, their experiment counters (keys "k/<experiment>/v/<id>") and their
  // viewer-index entries are deleted; their entity record becomes a tombstone
  // (the dense slot kept under ForgottenKey, a key no request can name:
  // deleted, no cohort, attributes, labels or creator); their slot joins the
  // forgotten list with the time and the log's length. Then the key ranges it
  // touched are compacted, so the deleted values leave the table files.
  // NotFound for an id the store does not hold. Audit records are not touched
  // here: the audit log redacts them (audit/audit_log.h), keeping its chain.
  struct ForgetSummary {
    Ref ref;
    uint64_t events = 0, follows = 0, experiment_counters = 0, index_entries = 0;
    std::vector<Event> removed;  // the events deleted (the live state takes them out)
  };
  virtual absl::StatusOr<ForgetSummary> Forget(const std::string& ext_id, int64_t now_ms) = 0;
  // The forgotten list: each forgotten slot, when, and the log's length then.
  struct Forgotten {
    Ref ref;
    int64_t forgotten_ms = 0;
    uint64_t log_offset = 0;
  };
  virtual absl::StatusOr<std::vector<Forgotten>> ForgottenEntities() const = 0;
  // Removes every expired audit record now (compacts the audit records).
  virtual absl::Status PruneAudits() = 0;

  // Facts about the data dir's contents that outlive one command, e.g. an
  // importer recording that its timelines carry no order (kMetaUnorderedTimelines).
  virtual absl::Status PutMeta(const std::string& key, const std::string& value) = 0;
  virtual absl::StatusOr<std::optional<std::string>> GetMeta(const std::string& key) const = 0;

  // Experiments (experiments/): each experiment's definition as a record,
  // written durably (fsync), and counters added without reading them (a merge
  // of int64 vectors, summed element by element), durable against process
  // crash (WAL). One column family holds both, keyed by the caller.
  using CounterDelta = std::pair<std::string, std::vector<int64_t>>;  // key, values to add
  virtual absl::Status PutExperimentRecord(const std::string& key, const std::string& value) = 0;
  virtual absl::Status AddCounters(const std::vector<CounterDelta>& deltas) = 0;
  // Sets counters to these values (one batch, WAL, no fsync).
  virtual absl::Status PutCounters(const std::vector<CounterDelta>& values) = 0;
  // Every record and counter whose key starts with prefix, in key order.
  virtual absl::Status ScanExperimentRecords(
      const std::string& prefix, const std::function<void(std::string_view key, std::string_view value)>& fn) const = 0;

  // What the store holds on disk and owes its background work, for operators.
  struct Usage {
    uint64_t disk_bytes = 0;                // live table files, all parts
    uint64_t audit_disk_bytes = 0;          // ... of which audit records
    uint64_t pending_compaction_bytes = 0;  // estimated bytes compaction still has to rewrite
    uint64_t running_compactions = 0;
    uint64_t memtable_bytes = 0;            // written, not yet flushed to table files
  };
  virtual Usage GetUsage() const = 0;

  // Storage health (docs/runbooks/disk-full.md). A failed flush, compaction or
  // log write stops the store's writes: BackgroundError says why ("" when
  // writes flow) until Resume, called once the volume has room, clears it.
  // ReadOnlyReason is set when the store opened read-only because its volume
  // could not be written at start ("" when writable).
  virtual std::string BackgroundError() const { return ""; }
  virtual absl::Status Resume() { return absl::OkStatus(); }
  virtual std::string ReadOnlyReason() const { return ""; }

};

// Set to "1" by importers whose viewers' interactions carry no time or order
// (HetRec play counts): `batch` then builds no session neighbours from them.
inline constexpr const char* kMetaUnorderedTimelines = "unordered_timelines";

// The key a forgotten entity's tombstone is kept under: a control byte, so
// that no request can name it (ids are printable), and the slot.
std::string ForgottenKey(Ref ref);

// A counter value as the experiments column family keeps it (little-endian
// int64s); decoding tolerates any length.
std::string EncodeCounters(const std::vector<int64_t>& values);
std::vector<int64_t> DecodeCounters(std::string_view bytes);

struct StoreOptions {
  int64_t audit_retention_ms = 0;  // audit records older than this expire (0: kept forever)
  const Clock* clock = nullptr;    // for audit stamps and expiry; nullptr: the system clock
  int64_t event_retention_ms = 0;  // events whose ts is older than this are dropped (0: kept forever)
  uint64_t max_wal_bytes = 256ull << 20;  // write-ahead log beyond this: the oldest memtables are flushed
  int64_t idempotency_window_ms = 86'400'000;  // idempotency records older than this expire (> 0)
  // Faults on command under the store (store/fault_injection.h; tests); null: none.
  std::shared_ptr<FaultInjection> faults = nullptr;
};

absl::StatusOr<std::unique_ptr<Store>> OpenRocksStore(const std::string& dir, OpenMode mode,
                                                      const StoreOptions& options = {});

}  // namespace affinity
