// `serve --batch-every DURATION`: runs the batch pipeline beside the server on
// a schedule, as a child process (`affinity batch --data DIR [--config F]`, the
// same binary), so that a failing or memory-hungry batch never takes the
// server down; the server picks the new snapshot and model up as it would
// from a batch run by cron. Never two at once: a run starts only after the
// previous one ended (and `affinity batch` itself refuses to run beside
// another on the same data dir). Each run's start, duration, outcome and the
// next run are kept for /admin/stats and /metrics.
// Thread safety: Status() is safe concurrently with the schedule's thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/component.h"

namespace affinity {

// "30s", "5m", "1h", "1d", "250ms" (a positive integer and a unit) in
// milliseconds; nullopt for anything else.
std::optional<int64_t> ParseDuration(const std::string& text);

// A component (base/component.h): "batch_schedule" in /admin/stats and the
// affinity_batch_* gauges.
class BatchSchedule : public Component {
 public:
  // `argv`: the command to run (argv[0] the executable's path).
  BatchSchedule(std::vector<std::string> argv, int64_t period_ms);
  ~BatchSchedule() override;
  void Start() override;
  // Stops the schedule; a running batch is sent SIGTERM and waited for.
  void Stop() override;
  // Moves the next run to now (after a running one ends): forgetting a person
  // asks for a batch that starts after it.
  void RunSoon();

  struct Status {
    int64_t period_ms = 0;
    uint64_t runs = 0, failures = 0;
    bool running = false;
    int64_t last_start_ms = 0;     // 0: none yet
    double last_duration_s = 0;
    std::string last_outcome;      // "ok", "failed (exit N): <last line>", ...
    std::string last_output;       // the last run's final lines
    int64_t next_run_ms = 0;
  };
  Status status() const;

  std::string_view name() const override { return "batch_schedule"; }
  void WriteStats(JsonWriter& w) const override;
  void ReportMetrics(MetricsSink& sink) const override;

 private:
  void Loop();
  void RunOnce();
  std::vector<std::string> argv_;
  int64_t period_ms_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;        // guarded by mu_
  int child_ = -1;           // guarded by mu_
  Status status_;            // guarded by mu_
  std::thread thread_;
};

}  // namespace affinity
