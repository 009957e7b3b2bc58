// Keeps a checkpoint of the live state on disk so that a server restarts from
// it plus the event log's tail instead of replaying the whole log. A poller
// writes one once `checkpoint_interval_seconds` have passed with new events,
// or sooner once `checkpoint_after_events` events are past the last one (a
// start that replayed the whole log writes one at once); a clean stop writes
// a last one. Each write copies the state under a brief lock and encodes and
// writes it off that lock (LiveState::WriteCheckpoint).
// Thread safety: all methods are safe for concurrent use; writes never overlap.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "base/clock.h"
#include "base/component.h"
#include "base/config.h"
#include "base/poller.h"
#include "state/live_state.h"
#include "state/checkpoint_options.h"

namespace affinity {

// Where a data dir keeps its live state's checkpoint.
std::string CheckpointPath(const std::string& data_dir);

// A component (base/component.h): "live_state" in /admin/stats,
// affinity_live_state_checkpoint in /metrics, POST /admin/checkpoint.
class Checkpointer : public Component {
 public:
  // `load`: how the state was loaded (the first checkpoint is due at once
  // when it replayed more than checkpoint_after_events).
  Checkpointer(LiveState* live, std::string path, const StateOptions& options, const Clock* clock,
               LiveLoadReport load);
  ~Checkpointer() override { Halt(/*write_last=*/false); }

  bool enabled() const { return options_.checkpoint_interval_seconds > 0; }
  void Start() override;
  // Stops the poller and writes a last checkpoint when events arrived since
  // the newest one (a clean stop: the next start replays nothing).
  void Stop() override { Halt(/*write_last=*/true); }
  // Stops the poller; with `write_last`, as Stop.
  void Halt(bool write_last);
  // Writes one now (POST /admin/checkpoint).
  absl::StatusOr<CheckpointInfo> WriteNow();
  // Asked before each write: a storage fault (the volume below its floor or
  // failing, state/storage_guard.h) skips it, counted as a failure with the
  // reason; the log still holds every event. Set before Start.
  void SetAdmission(std::function<absl::Status()> admit) { admit_ = std::move(admit); }

  struct Status {
    bool enabled = false;
    int interval_seconds = 0;
    int64_t after_events = 0;
    std::optional<CheckpointInfo> last;  // the newest written by this process (or the one loaded)
    bool last_written_here = false;
    uint64_t written = 0, failures = 0;
    std::string last_error;
    uint64_t events_since = 0;           // events applied past the newest checkpoint (computed by status())
    LiveLoadReport load;
  };
  Status status() const;

  std::string_view name() const override { return "live_state"; }
  void WriteStats(JsonWriter& w) const override;
  void ReportMetrics(MetricsSink& sink) const override;
  std::vector<AdminRoute> Routes() override;

 private:
  absl::StatusOr<bool> MaybeWrite();
  absl::StatusOr<CheckpointInfo> Write();

  LiveState* live_;
  std::function<absl::Status()> admit_;
  std::string path_;
  StateOptions options_;
  const Clock* clock_;
  mutable std::mutex mu_;
  std::mutex write_mu_;  // one write at a time
  Status status_;        // guarded by mu_
  uint64_t last_events_ = 0;     // guarded by mu_: events the newest checkpoint holds
  int64_t last_ms_ = 0;          // guarded by mu_: when it was written (or the state loaded)
  Poller poller_;
};

}  // namespace affinity
