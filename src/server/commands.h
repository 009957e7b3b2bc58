// The affinity commands behind the command line (server/main.cc): each returns
// the process exit code and prints a one-line reason on failure.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "base/config.h"
#include "base/file_lock.h"
#include "data/generate.h"
#include "eval/evaluator.h"
#include "config/config.h"

namespace affinity {

// Prints "affinity: <message>" on stderr; returns 1.
int Fail(const absl::Status& s);
// A command line that cannot run (a missing or malformed option): prints
// "affinity: <message> (see --help)" on one line of stderr; returns 2.
inline constexpr int kUsageExitCode = 2;
int UsageError(const std::string& message);
// The configuration at `path`, or the defaults when path is empty.
absl::StatusOr<Config> LoadConfig(const std::string& path);
// True when stderr is a terminal (progress lines are shown).
bool Interactive();
// NotFound unless `dir` holds a data dir (its store or its model registry).
absl::Status RequireDataDir(const std::string& dir);
// Takes DIR/batch.lock, held while the returned lock lives (batch and backfill
// never run two at once on a data dir); FailedPrecondition when another holds
// it. A dir that does not exist yet is not locked (the lock holds nothing).
absl::StatusOr<FileLock> HoldBatchLock(const std::string& dir);

// batch_every: "" or a duration ("30s", "1h"): `affinity batch` runs on that schedule.
struct BackfillArgs {
  std::string data, group, config_path;
  int64_t from_ms = 0, to_ms = 0;  // 0: no bound
  bool force = false;              // publish even when rows change by more than half
};
int Backfill(const BackfillArgs& args);

// insecure_listen: serve on a non-loopback address without [auth] keys.
int Serve(const std::string& data, const std::string& host, int port, const std::string& config_path,
          const std::string& batch_every = "", bool insecure_listen = false);
int Generate(const std::string& out, GenerateOptions o);
int Import(const std::string& data, const std::string& format, const std::string& path,
           const std::string& config_path);
int Batch(const std::string& data, const std::string& config_path);
int Prune(const std::string& data, const std::string& config_path, bool events);
// From the registry in `data`, or from the server at `url` when given.
int ModelList(const std::string& data, const std::string& url, bool json);
int ModelPromote(const std::string& data, const std::string& version, const std::string& config_path, bool force);
int ModelImport(const std::string& data, const std::string& dir);
int ModelRollback(const std::string& data);
// Checks every kept snapshot version and every model version as a server does
// at load (server/verify_command.cc); 1 when any is damaged.
int Verify(const std::string& data);
int Eval(EvalOptions o, const std::string& config_path, const std::string& json_out, const std::string& topk_out,
         const std::string& report_out);

}  // namespace affinity
