#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "features/feature_registry.h"
#include "ranking/ranker_inputs.h"
#include "server/commands.h"
#include "config/config.h"

namespace affinity {

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "affinity: %s\n", std::string(s.message()).c_str());
  return 1;
}

int UsageError(const std::string& message) {
  std::string line = message;
  for (char& c : line)
    if (c == '\n') c = ' ';
  std::fprintf(stderr, "affinity: %s (see --help)\n", line.c_str());
  return kUsageExitCode;
}

absl::StatusOr<Config> LoadConfig(const std::string& path) {
  if (path.empty()) return Config();
  auto config = Config::FromTomlFile(path);
  if (!config.ok()) return config;
  // Feature governance: [features.<group>] names declared groups, and no
  // protected feature may become an input of a ranker.
  std::vector<FeatureGroup> groups = DeclaredFeatureGroups(config->batch.als_factors);
  if (auto s = ApplyFeatureSettings(config->features, &groups); !s.ok())
    return absl::InvalidArgumentError("config: " + std::string(s.message()));
  if (auto s = CheckNoProtectedInputs(RankerInputNames(), groups); !s.ok())
    return absl::InvalidArgumentError("config: the learned ranker's " + std::string(s.message()));
  return config;
}

bool Interactive() { return ::isatty(STDERR_FILENO); }

absl::StatusOr<FileLock> HoldBatchLock(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return FileLock();  // nothing to guard yet
  auto lock = FileLock::Acquire(dir + "/batch.lock", FileLock::Wait::kTry);
  if (absl::IsUnavailable(lock.status()))
    return absl::FailedPreconditionError("another `affinity batch` or `affinity backfill` is running on " + dir +
                                         " (it holds batch.lock); this run does nothing");
  return lock;
}

absl::Status RequireDataDir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return absl::NotFoundError("no data dir at " + dir + " (check --data)");
  if (!fs::exists(fs::path(dir) / "db" / "CURRENT", ec) && !fs::exists(fs::path(dir) / "models", ec))
    return absl::NotFoundError(dir + " is not an affinity data dir: it has neither db/ nor models/ (check --data)");
  return absl::OkStatus();
}

}  // namespace affinity
