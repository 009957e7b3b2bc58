// The event log: the feedback topic every derived state is rebuilt from
// (live state at start, `batch`, logged training), with the follow-graph
// changes and idempotency records that must be written atomically with it.
// Offsets are dense and assigned in append order. Readers of the log take an
// EventLog; the single-machine log is the RocksDB store's (store/store.h), and
// a replicated deployment implements the same interface over its own stream.
// Thread safety: all methods are safe for concurrent use.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/ids.h"
#include "events/event.h"

namespace affinity {

struct FollowChange {
  Ref follower;
  Ref target;
  bool add = true;
  int64_t ts = 0;
};

// What a write with an Idempotency-Key leaves behind (docs/storage.md): the
// response it was answered with, stored in the same atomic write as the batch
// itself, so that a batch is never stored without its key or a key without its
// batch. A retry with the key is answered from it instead of being applied again.
struct IdempotencyRecord {
  std::string key;          // the client's key (1-255 printable ASCII characters)
  std::string fingerprint;  // SHA-256 of the request it answered (method, path, body): 32 bytes
  int status = 0;           // the response's HTTP status
  std::string body;         // the response's body
  int64_t written_ms = 0;   // unix ms; stamped by the store when written
};

class EventLog {
 public:
  virtual ~EventLog() = default;

  // Appends events atomically with their follow-graph changes and makes them
  // durable (fsync) before returning. Assigns offsets in log order. With `key`,
  // its record is written in the same atomic write (stamped with the time).
  virtual absl::Status AppendEvents(std::vector<Event>& events, const std::vector<FollowChange>& follows,
                                    const IdempotencyRecord* key = nullptr) = 0;

  // Visits every event in offset order; stops early when fn returns false.
  // Events older than the store's event retention are skipped.
  absl::Status ScanEvents(const std::function<bool(const Event&)>& fn) const { return ScanEventsFrom(0, fn); }
  // The same, from the event at offset `from` on (the log's tail).
  virtual absl::Status ScanEventsFrom(uint64_t from, const std::function<bool(const Event&)>& fn) const = 0;
  // The events at these offsets, in the order given; offsets no longer held
  // (past the retention) are left out.
  virtual absl::StatusOr<std::vector<Event>> ReadEvents(const std::vector<uint64_t>& offsets) const = 0;
  // Removes every event older than the event retention now (compacts the log).
  virtual absl::Status PruneEvents() = 0;
  // Events older than this are dropped (0: kept forever).
  virtual int64_t EventRetentionMs() const = 0;

  // The offset the next appended event will get (= number of events ever appended).
  virtual uint64_t NextOffset() const = 0;
  // A follower of the log (a secondary store, a replica) reads up to the
  // latest appends; the writer has nothing to do.
  virtual absl::Status CatchUp() = 0;
};

}  // namespace affinity
