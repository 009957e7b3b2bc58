// The whole configuration, read from a TOML file (`serve --config FILE`): the
// server, query pipeline and action settings of base/config.h, and each
// component's own options from its room (base/settings.h says their form).
// Only the binary's wiring (server/) and tests hold a Config; every component
// is handed its own options.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "access/access.h"
#include "audit/audit_options.h"
#include "base/clock.h"
#include "base/config.h"
#include "batch/batch_options.h"
#include "experiments/experiments_options.h"
#include "features/feature_settings.h"
#include "models/drift_options.h"
#include "ranking/ranker_options.h"
#include "state/checkpoint_options.h"
#include "state/storage_options.h"
#include "store/event_log_options.h"
#include "store/store.h"

namespace affinity {

struct Config {
  ServerOptions server;
  ServingOptions serving;
  ActionWeights actions;
  BatchOptions batch;
  RankerOptions ranker;
  AuditOptions audit;
  EventLogOptions events;
  StorageOptions storage;
  StateOptions state;
  ExperimentsOptions experiments;
  DriftOptions drift;
  std::map<std::string, FeatureGroupSettings> features;  // by group name
  AuthOptions auth;  // [auth] keys: API keys with scopes (none: every route open)

  // Every section's Validate, in the order of the sections above.
  absl::Status Validate() const;
  static absl::StatusOr<Config> FromTomlFile(const std::string& path);
  static absl::StatusOr<Config> FromTomlString(const std::string& text);
  // This configuration with settings ("serving.diversity" -> 0.2) changed,
  // checked exactly as the file's would be (unknown keys, types, ranges).
  absl::StatusOr<Config> WithOverrides(const std::vector<std::pair<std::string, ConfigValue>>& overrides) const;
};

// The retentions a configuration sets (audit.retention_hours, events.retention_hours,
// server.idempotency_window_seconds) and the WAL cap (storage.max_wal_mb).
// Every command that reads or writes a data dir opens it with these, so the log
// it sees and what it keeps agree with the server's.
StoreOptions StoreOptionsFor(const Config& config, const Clock* clock);

}  // namespace affinity
