#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "server/commands.h"

namespace affinity {

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "affinity: %s\n", std::string(s.message()).c_str());
  return 1;
}

absl::StatusOr<Config> LoadConfig(const std::string& path) {
  if (path.empty()) return Config();
  return Config::FromTomlFile(path);
}

bool Interactive() { return ::isatty(STDERR_FILENO); }

absl::Status RequireDataDir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return absl::NotFoundError("no data dir at " + dir + " (check --data)");
  if (!fs::exists(fs::path(dir) / "db" / "CURRENT", ec) && !fs::exists(fs::path(dir) / "models", ec))
    return absl::NotFoundError(dir + " is not an affinity data dir: it has neither db/ nor models/ (check --data)");
  return absl::OkStatus();
}

}  // namespace affinity
