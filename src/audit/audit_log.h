// The audit log: every served response with its explanations, keyed by
// request_id. Record() queues and returns at once; a background thread, the
// log's single writer, writes records to the store (durable against process
// crash). Get() sees queued records too, so a record is readable as soon as its
// response is sent.
// The writer keeps the audit chain (audit/audit_chain.h, docs/security.md):
// each record's chain entry goes into the same write as the record, and the
// head advances only when that write succeeds (a dropped record, or one the
// store refused, never enters the chain; both are counted). Every checkpoint
// interval, and at a stop, it stores a checkpoint of the head in a synced
// write (signed when it has a key), logs it (the off-box copy), and prunes the
// chain's prefix whose records have all expired, behind a stored checkpoint.
// Thread safety: safe for concurrent use.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "audit/audit_chain.h"
#include "base/clock.h"
#include "base/component.h"
#include "store/store.h"

namespace affinity {

struct AuditChainOptions {
  const Clock* clock = nullptr;  // write times and the checkpoint interval; nullptr: the system clock
  int64_t checkpoint_interval_ms = 60'000;
  std::shared_ptr<const CheckpointSigner> signer;  // null: checkpoints are stored unsigned
};

// A component (base/component.h) whose stop flushes the queue to the store
// and takes a last checkpoint.
class AuditLog : public Component {
 public:
  explicit AuditLog(Store* store, size_t max_queue = 100000, AuditChainOptions chain = {});
  ~AuditLog() override;  // drains the queue
  // Returns false when the queue is full (the record is dropped and counted).
  // viewer_id: the person it was served to, written to the store's viewer
  // index with the record (forgetting a person finds their records by it).
  bool Record(std::string request_id, std::string json, std::string viewer_id = "");
  absl::StatusOr<std::optional<std::string>> Get(const std::string& request_id) const;
  // Removes a stored record's bytes, keeping its chain entry, and appends a
  // redaction entry naming it (a synced write). Waits for the writer: records
  // queued before it are written first. NotFound when there is no such record
  // (never written, expired or already redacted).
  absl::Status Redact(const std::string& request_id);
  uint64_t dropped() const { return dropped_; }
  // Records the store refused to write (lost; counted, never silent).
  uint64_t write_errors() const { return write_errors_; }
  // The chain's head: the sequence of its last entry (0: none yet).
  uint64_t head_sequence() const { return head_sequence_; }
  uint64_t checkpoint_sequence() const { return checkpoint_sequence_; }
  void Flush();
  // Takes a checkpoint now (when the head moved since the last one); waits for it.
  absl::Status Checkpoint();

  std::string_view name() const override { return "audit"; }
  void Stop() override;
  // "audit_chain": the head and the last checkpoint's sequence, whether checkpoints are signed.
  void WriteStats(JsonWriter& w) const override;
  // affinity_audit_chain_sequence{point}, affinity_audit_records_lost{reason}.
  void ReportMetrics(MetricsSink& sink) const override;
  // Asked before each write: a storage fault keeps the records out of a store
  // whose volume is full or failing (they are counted as write errors, and the
  // responses are served all the same). Set before the first Record.
  void SetAdmission(std::function<absl::Status()> admit) { admit_ = std::move(admit); }

 private:
  struct Op;
  struct Head {
    uint64_t sequence = 0;
    ChainHash hash{};
  };
  void Run();
  absl::Status LoadHead();
  void WriteRecords(std::vector<Store::AuditRecord>& records, std::vector<std::pair<std::string, std::string>>& index);
  absl::Status WriteRedaction(const std::string& request_id);
  absl::Status WriteCheckpoint();
  absl::Status PruneChain(int64_t now);
  ChainEntry NextEntry(const Head& head, ChainEntryKind kind, std::string_view bytes, std::string request_id,
                       int64_t now) const;

  Store* store_;
  AuditChainOptions chain_;
  const Clock* clock_;
  std::function<absl::Status()> admit_;
  size_t max_queue_;
  mutable std::mutex mu_;
  std::condition_variable cv_, drained_;
  std::deque<Op> queue_;                                    // guarded by mu_
  std::unordered_map<std::string, std::string> pending_;    // guarded by mu_
  bool stop_ = false;                                       // guarded by mu_
  size_t in_flight_ = 0;                                    // guarded by mu_
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> write_errors_{0};
  Head head_;                   // the writer's
  bool started_chain_ = false;  // the writer's: the chain's start is stored
  std::atomic<uint64_t> head_sequence_{0};
  std::atomic<uint64_t> checkpoint_sequence_{0};
  std::thread writer_;
};

}  // namespace affinity
