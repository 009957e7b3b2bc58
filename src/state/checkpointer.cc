#include "state/checkpointer.h"

#include <spdlog/spdlog.h>

namespace affinity {

std::string CheckpointPath(const std::string& data_dir) { return data_dir + "/state/live.ckpt"; }

Checkpointer::Checkpointer(LiveState* live, std::string path, const StateOptions& options, const Clock* clock,
                           LiveLoadReport load)
    : live_(live),
      path_(std::move(path)),
      options_(options),
      clock_(clock),
      poller_(1000, [this] { return MaybeWrite(); }) {
  status_.enabled = enabled();
  status_.interval_seconds = options_.checkpoint_interval_seconds;
  status_.after_events = options_.checkpoint_after_events;
  if (load.from_checkpoint) status_.last = load.checkpoint;
  last_events_ = load.from_checkpoint ? load.checkpoint.events : 0;
  last_ms_ = clock_->NowMillis();
  status_.load = std::move(load);
}

void Checkpointer::Start() {
  if (enabled()) poller_.Start();
}

void Checkpointer::Stop(bool write_last) {
  poller_.Stop();
  if (!write_last || !enabled()) return;
  bool due;
  {
    std::lock_guard<std::mutex> lock(mu_);
    due = live_->events_applied() != last_events_;
  }
  if (!due) return;
  if (auto w = Write(); !w.ok()) spdlog::error("last checkpoint not written: {}", std::string(w.status().message()));
}

absl::StatusOr<bool> Checkpointer::MaybeWrite() {
  const uint64_t applied = live_->events_applied();
  const int64_t now = clock_->NowMillis();
  {
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t since = applied - std::min(applied, last_events_);
    const bool by_time = since > 0 && now - last_ms_ >= int64_t(options_.checkpoint_interval_seconds) * 1000;
    const bool by_count = options_.checkpoint_after_events > 0 && since >= uint64_t(options_.checkpoint_after_events);
    if (!by_time && !by_count) return false;
  }
  auto written = Write();
  if (!written.ok()) return written.status();
  return true;
}

absl::StatusOr<CheckpointInfo> Checkpointer::WriteNow() { return Write(); }

absl::StatusOr<CheckpointInfo> Checkpointer::Write() {
  std::lock_guard<std::mutex> one(write_mu_);
  const absl::Status admitted = admit_ ? admit_() : absl::OkStatus();
  absl::StatusOr<CheckpointInfo> info =
      admitted.ok() ? live_->WriteCheckpoint(path_, clock_->NowMillis()) : absl::StatusOr<CheckpointInfo>(admitted);
  std::lock_guard<std::mutex> lock(mu_);
  if (!info.ok()) {
    ++status_.failures;
    status_.last_error = std::string(info.status().message());
    return info.status();
  }
  ++status_.written;
  status_.last_error.clear();
  status_.last = *info;
  status_.last_written_here = true;
  last_events_ = info->events;
  last_ms_ = info->created_ms;
  spdlog::info("checkpoint written: {} events up to log offset {}, {:.1f} MB in {:.2f}s (ingest held {:.1f} ms)",
               info->events, info->offset, double(info->bytes) / 1e6, info->seconds, info->locked_seconds * 1e3);
  return info;
}

Checkpointer::Status Checkpointer::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  Status s = status_;
  s.events_since = live_->events_applied() - std::min(live_->events_applied(), last_events_);
  return s;
}

}  // namespace affinity
