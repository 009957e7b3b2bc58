// [state]: the live state's checkpoint (its owner: state/checkpointer.h).
#pragma once

#include <cstdint>
#include <string>
#include "absl/status/status.h"
#include "base/settings.h"

namespace affinity {

// The live state's checkpoint (<data>/state/live.ckpt): a server starts from it
// plus the event log's tail instead of replaying the whole log.
struct StateOptions {
  int checkpoint_interval_seconds = 300;      // write one this often while events arrive (0: never; every
                                              // start then replays the whole log)
  int64_t checkpoint_after_events = 1000000;  // ... or sooner, once this many events are past the last one

  static constexpr const char* kSection = "state";
  // Its settings, for the configuration reader (base/settings.h).
  template <class Read>
  void Fields(Read& read) {
    read("state", "checkpoint_interval_seconds", checkpoint_interval_seconds);
    read("state", "checkpoint_after_events", checkpoint_after_events);
  }
  absl::Status Validate() const {
    auto bad = SettingError;
    if (checkpoint_interval_seconds < 0) return bad("state.checkpoint_interval_seconds must be >= 0");
    if (checkpoint_after_events < 0) return bad("state.checkpoint_after_events must be >= 0");
    return absl::OkStatus();
  }
};

}  // namespace affinity
