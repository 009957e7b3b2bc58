// The synthetic world behind the demo: users in communities, a power-law follow
// graph, creators with topics, items by creators, and 30 days of feedback driven
// by topic affinity, social influence and recency. Same options (and the same
// end time: by default the start of the current hour), same files.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"

namespace affinity {

struct GenerateOptions {
  int64_t users = 10000;
  int64_t creators = 500;
  int64_t items = 20000;
  int64_t events = 500000;
  uint64_t seed = 42;
  int days = 30;
  // The last event's time (unix ms); 0: the start of the current hour, so the
  // demo's history ends now (decays, lags and trends read as a live system's).
  int64_t end_ms = 0;
  int topics = 32;
};

struct GenerateStats {
  int64_t users = 0, creators = 0, items = 0, events = 0, follows = 0;
};

// Writes entities.tsv and events.tsv (the native format) into out_dir.
// progress(fraction) is called now and then.
absl::Status GenerateWorld(const GenerateOptions& options, const std::string& out_dir,
                           GenerateStats* stats, const std::function<void(double)>& progress = {});

}  // namespace affinity
