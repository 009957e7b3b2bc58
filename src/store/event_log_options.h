// [events]: the event log's retention (its owner: store/event_log.h).
#pragma once

#include <cstdint>
#include <string>
#include "absl/status/status.h"
#include "base/settings.h"

namespace affinity {

// The event log, which `batch` and server start rebuild from.
struct EventLogOptions {
  int retention_hours = 0;  // events whose ts is older than this are dropped and refused at ingest
                            // (0: kept forever); batch then learns from this window only

  static constexpr const char* kSection = "events";
  // Its settings, for the configuration reader (base/settings.h).
  template <class Read>
  void Fields(Read& read) {
    read("events", "retention_hours", retention_hours);
  }
  absl::Status Validate() const {
    auto bad = SettingError;
    if (retention_hours < 0) return bad("events.retention_hours must be >= 0");
    return absl::OkStatus();
  }
};

}  // namespace affinity
