#include "state/checkpointer.h"
#include "state/checkpoint_options.h"

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

void Checkpointer::Halt(bool write_last) {
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

void Checkpointer::WriteStats(JsonWriter& w) const {
  const Status c = status();
  w.Key("live_state").BeginObject();
  w.Key("load").BeginObject();
  w.Key("from_checkpoint").Bool(c.load.from_checkpoint).Key("replayed_events").Uint(c.load.replayed);
  w.Key("seconds").Double(c.load.seconds);
  if (!c.load.checkpoint_refused.empty()) w.Key("checkpoint_refused").String(c.load.checkpoint_refused);
  w.EndObject();
  w.Key("checkpoint").BeginObject();
  w.Key("enabled").Bool(c.enabled).Key("interval_seconds").Int(c.interval_seconds);
  w.Key("after_events").Int(c.after_events).Key("written").Uint(c.written).Key("failures").Uint(c.failures);
  if (!c.last_error.empty()) w.Key("last_error").String(c.last_error);
  w.Key("events_since").Uint(c.events_since);
  w.Key("last");
  if (c.last) {
    w.BeginObject().Key("offset").Uint(c.last->offset).Key("events").Uint(c.last->events);
    w.Key("created_ms").Int(c.last->created_ms).Key("bytes").Uint(c.last->bytes);
    w.Key("seconds").Double(c.last->seconds).Key("ingest_held_seconds").Double(c.last->locked_seconds);
    w.Key("written_by_this_server").Bool(c.last_written_here).EndObject();
  } else {
    w.Null();
  }
  w.EndObject();
  w.EndObject();
}

void Checkpointer::ReportMetrics(MetricsSink& sink) const {
  static constexpr std::string_view kHelp =
      "The live state's newest checkpoint (field: offset = log offset covered, events, "
      "events_since, created_timestamp_seconds, bytes, write_seconds, written, failures) and "
      "how this server's state was loaded (load_seconds, load_replayed_events, "
      "load_from_checkpoint)";
  const Status s = status();
  auto set = [&](const char* field, double v) {
    sink.Gauge("affinity_live_state_checkpoint", kHelp, {{"field", field}}, v);
  };
  if (s.last) {
    set("offset", double(s.last->offset));
    set("events", double(s.last->events));
    set("created_timestamp_seconds", double(s.last->created_ms) / 1000.0);
    set("bytes", double(s.last->bytes));
    if (s.last_written_here) set("write_seconds", s.last->seconds);
  }
  set("events_since", double(s.events_since));
  set("written", double(s.written));
  set("failures", double(s.failures));
  set("load_seconds", s.load.seconds);
  set("load_replayed_events", double(s.load.replayed));
  set("load_from_checkpoint", s.load.from_checkpoint ? 1 : 0);
}

std::vector<AdminRoute> Checkpointer::Routes() {
  AdminRoute write{"POST", "/admin/checkpoint", "checkpoint"};
  write.writes = true;
  write.handle = [this](const AdminRequest&) -> absl::StatusOr<AdminReply> {
    if (!enabled())
      return AdminReply::Error(409, "checkpoints_disabled",
                               "checkpoints are off (state.checkpoint_interval_seconds = 0)");
    auto info = WriteNow();
    if (!info.ok()) return info.status();
    JsonWriter w;
    w.BeginObject().Key("offset").Uint(info->offset).Key("events").Uint(info->events);
    w.Key("created_ms").Int(info->created_ms).Key("bytes").Uint(info->bytes).Key("seconds").Double(info->seconds);
    w.Key("ingest_held_seconds").Double(info->locked_seconds);
    w.EndObject();
    return AdminReply{200, w.Release()};
  };
  return {std::move(write)};
}

}  // namespace affinity
