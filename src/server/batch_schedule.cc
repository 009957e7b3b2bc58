#include "server/batch_schedule.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>

#include <spdlog/spdlog.h>

#include "base/clock.h"

extern char** environ;

namespace affinity {
namespace {

int64_t NowMs() { return SystemClock::Default()->NowMillis(); }

// The last `lines` lines of `text`.
std::string Tail(const std::string& text, int lines) {
  size_t end = text.size();
  while (end > 0 && text[end - 1] == '\n') --end;
  size_t pos = end;
  for (int n = 0; n < lines && pos > 0; ++n) {
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string::npos) {
      pos = 0;
      break;
    }
  }
  return text.substr(pos == 0 ? 0 : pos + 1, end - (pos == 0 ? 0 : pos + 1));
}

}  // namespace

std::optional<int64_t> ParseDuration(const std::string& text) {
  size_t i = 0;
  int64_t n = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    n = n * 10 + (text[i] - '0');
    if (n > int64_t(1) << 40) return std::nullopt;
    ++i;
  }
  if (i == 0 || n <= 0) return std::nullopt;
  const std::string unit = text.substr(i);
  if (unit == "ms") return n;
  if (unit == "s") return n * 1000;
  if (unit == "m") return n * 60 * 1000;
  if (unit == "h") return n * 3600 * 1000;
  if (unit == "d") return n * 86400 * 1000;
  return std::nullopt;
}

BatchSchedule::BatchSchedule(std::vector<std::string> argv, int64_t period_ms)
    : argv_(std::move(argv)), period_ms_(period_ms) {
  status_.period_ms = period_ms;
}

BatchSchedule::~BatchSchedule() { Stop(); }

void BatchSchedule::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  status_.next_run_ms = NowMs() + period_ms_;
  thread_ = std::thread([this] { Loop(); });
}

void BatchSchedule::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    if (child_ > 0) ::kill(child_, SIGTERM);
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

BatchSchedule::Status BatchSchedule::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return status_;
}

void BatchSchedule::RunSoon() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    status_.next_run_ms = std::min(status_.next_run_ms, NowMs());
  }
  cv_.notify_all();
}

void BatchSchedule::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    const int64_t wait = status_.next_run_ms - NowMs();
    if (wait > 0) {
      const int64_t next = status_.next_run_ms;
      cv_.wait_for(lock, std::chrono::milliseconds(wait), [this, next] { return stop_ || status_.next_run_ms < next; });
      continue;
    }
    lock.unlock();
    RunOnce();
    lock.lock();
    // The next run is a period after this one started, or at once when it
    // took longer than a period (runs never overlap).
    status_.next_run_ms = std::max(NowMs(), status_.last_start_ms + period_ms_);
  }
}

void BatchSchedule::RunOnce() {
  const int64_t start = NowMs();
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    std::lock_guard<std::mutex> lock(mu_);
    status_.last_start_ms = start;
    status_.runs++, status_.failures++;
    status_.last_outcome = std::string("failed: cannot create a pipe: ") + std::strerror(errno);
    return;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
  // The server blocks its stop signals for sigwait; the child must not inherit that.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  std::vector<char*> args;
  for (auto& a : argv_) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) {
      ::close(pipe_fds[0]), ::close(pipe_fds[1]);
      posix_spawn_file_actions_destroy(&actions);
      posix_spawnattr_destroy(&attr);
      return;
    }
    rc = posix_spawn(&pid, args[0], &actions, &attr, args.data(), environ);
    child_ = rc == 0 ? pid : -1;
    status_.running = rc == 0;
    status_.last_start_ms = start;
  }
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(pipe_fds[1]);
  spdlog::info("scheduled batch: started (every {} ms)", period_ms_);
  std::string output;
  if (rc == 0) {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(pipe_fds[0], buf, sizeof buf)) > 0) {
      output.append(buf, size_t(n));
      if (output.size() > (1 << 20)) output.erase(0, output.size() - (1 << 19));  // keep the end
    }
  }
  ::close(pipe_fds[0]);
  int wstatus = 0;
  if (rc == 0) ::waitpid(pid, &wstatus, 0);
  const double seconds = double(NowMs() - start) / 1000.0;
  const bool ok = rc == 0 && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0;
  std::string outcome;  // "ok", or "failed ..." saying how (the stats' last_outcome)
  if (rc != 0) {
    outcome = std::string("failed: cannot start ") + argv_[0] + ": " + std::strerror(rc);
  } else if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) {
    outcome = "ok";
  } else if (WIFEXITED(wstatus)) {
    outcome = "failed (exit " + std::to_string(WEXITSTATUS(wstatus)) + "): " + Tail(output, 1);
  } else {
    outcome = "failed (signal " + std::to_string(WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0) + ")";
  }
  if (ok)
    spdlog::info("scheduled batch: ok in {:.1f}s: {}", seconds, Tail(output, 1));
  else
    spdlog::error("scheduled batch: {} after {:.1f}s", outcome, seconds);
  std::lock_guard<std::mutex> lock(mu_);
  child_ = -1;
  status_.running = false;
  status_.runs++;
  if (!ok) status_.failures++;
  status_.last_duration_s = seconds;
  status_.last_outcome = outcome;
  status_.last_output = Tail(output, 3);
}


void BatchSchedule::WriteStats(JsonWriter& w) const {
  const Status b = status();
  w.Key("batch_schedule").BeginObject();
  w.Key("every_seconds").Double(double(b.period_ms) / 1000.0).Key("runs").Uint(b.runs).Key("failures").Uint(b.failures);
  w.Key("running").Bool(b.running);
  w.Key("last_start_ms");
  if (b.last_start_ms > 0) w.Int(b.last_start_ms); else w.Null();
  w.Key("last_duration_seconds").Double(b.last_duration_s).Key("last_outcome").String(b.last_outcome);
  w.Key("last_output").String(b.last_output).Key("next_run_ms").Int(b.next_run_ms);
  w.EndObject();
}

void BatchSchedule::ReportMetrics(MetricsSink& sink) const {
  const Status s = status();
  constexpr std::string_view kRuns = "Scheduled batch runs (serve --batch-every) since the server started, by outcome";
  sink.Gauge("affinity_batch_runs", kRuns, {{"outcome", "ok"}}, double(s.runs - s.failures));
  sink.Gauge("affinity_batch_runs", kRuns, {{"outcome", "failed"}}, double(s.failures));
  sink.Gauge("affinity_batch_last_duration_seconds", "How long the last scheduled batch run took", s.last_duration_s);
  sink.Gauge("affinity_batch_next_run_timestamp_seconds", "When the next scheduled batch run starts (unix seconds)",
             double(s.next_run_ms) / 1000.0);
  sink.Gauge("affinity_batch_running", "1 while a scheduled batch run is in progress", s.running ? 1 : 0);
}

}  // namespace affinity
