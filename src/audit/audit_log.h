// The audit log: every served response with its explanations, keyed by
// request_id. Record() queues and returns at once; a background thread writes
// records to the store (durable against process crash). Get() sees queued
// records too, so a record is readable as soon as its response is sent.
// Thread safety: safe for concurrent use.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "base/component.h"
#include "store/store.h"

namespace affinity {

// A component (base/component.h) whose stop flushes the queue to the store.
class AuditLog : public Component {
 public:
  explicit AuditLog(Store* store, size_t max_queue = 100000);
  ~AuditLog() override;  // drains the queue
  // Returns false when the queue is full (the record is dropped and counted).
  bool Record(std::string request_id, std::string json);
  absl::StatusOr<std::optional<std::string>> Get(const std::string& request_id) const;
  uint64_t dropped() const { return dropped_; }
  // Records the store refused to write (lost; counted, never silent).
  uint64_t write_errors() const { return write_errors_; }
  void Flush();

  std::string_view name() const override { return "audit"; }
  void Stop() override { Flush(); }
  // Asked before each write: a storage fault keeps the records out of a store
  // whose volume is full or failing (they are counted as write errors, and the
  // responses are served all the same). Set before the first Record.
  void SetAdmission(std::function<absl::Status()> admit) { admit_ = std::move(admit); }

 private:
  void Run();
  Store* store_;
  std::function<absl::Status()> admit_;
  size_t max_queue_;
  mutable std::mutex mu_;
  std::condition_variable cv_, drained_;
  std::deque<std::pair<std::string, std::string>> queue_;   // guarded by mu_
  std::unordered_map<std::string, std::string> pending_;    // guarded by mu_
  bool stop_ = false;                                       // guarded by mu_
  size_t in_flight_ = 0;                                    // guarded by mu_
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> write_errors_{0};
  std::thread writer_;
};

}  // namespace affinity
