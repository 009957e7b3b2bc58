// Runs the affinity binary as a child process for end-to-end tests: commands to
// completion, and servers in the background on an ephemeral port.
#pragma once

#include <fcntl.h>

#include <signal.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace affinity::testing {

inline std::string AffinityBin() {
  const char* b = std::getenv("AFFINITY_BIN");
  return b ? b : "build/affinity";
}

inline std::string SharedData() {
  const char* d = std::getenv("AFFINITY_SHARED_DATA");
  return d ? d : "../shared/data";
}

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs `affinity args...` and waits; with timeout_seconds, at most that long
// (then the exit code is 124, as timeout(1) reports it).
inline CommandResult RunAffinity(const std::vector<std::string>& args, int timeout_seconds = 0) {
  std::string cmd = (timeout_seconds > 0 ? "timeout " + std::to_string(timeout_seconds) + " " : std::string()) + "'" +
                    AffinityBin() + "'";
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " 2>&1";
  CommandResult r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// `affinity serve --data DIR --port 0` in the background; the port is read from
// the line it prints when ready.
class ServerProcess {
 public:
  // Waits for the line the server prints once ready ("serving on"), or with
  // wait_until_ready false for the one it prints when its port opens, before
  // the state is loaded ("listening on").
  // With descriptor_limit, the server runs with that soft and hard
  // RLIMIT_NOFILE (as under systemd's default of 1,024).
  explicit ServerProcess(const std::string& data_dir, const std::vector<std::string>& extra = {},
                         bool wait_until_ready = true, uint64_t descriptor_limit = 0) {
    descriptor_limit_ = descriptor_limit;
    Start(data_dir, extra, wait_until_ready ? "serving on http://127.0.0.1:" : "listening on http://127.0.0.1:");
  }
  pid_t pid() const { return pid_; }
  ~ServerProcess() { Stop(SIGTERM); }

  int port() const { return port_; }
  bool running() const { return pid_ > 0 && port_ > 0; }
  const std::string& log() const { return log_; }

  void Kill9() { Stop(SIGKILL); }
  void Stop(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    int status;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    if (out_) {  // what it wrote after it was ready, without waiting on a child that still holds the pipe
      const int fd = ::fileno(out_);
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
      char buf[4096];
      for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) log_.append(buf, size_t(n));
      std::fclose(out_);
    }
    out_ = nullptr;
  }

 private:
  void Start(const std::string& data_dir, const std::vector<std::string>& extra, const std::string& marker) {
    int fds[2];
    if (::pipe(fds) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
      if (descriptor_limit_ > 0) {
        rlimit r{rlim_t(descriptor_limit_), rlim_t(descriptor_limit_)};
        ::setrlimit(RLIMIT_NOFILE, &r);
      }
      ::dup2(fds[1], STDOUT_FILENO);
      ::dup2(fds[1], STDERR_FILENO);
      ::close(fds[0]);
      ::close(fds[1]);
      std::vector<std::string> args = {AffinityBin(), "serve", "--data", data_dir, "--port", "0"};
      args.insert(args.end(), extra.begin(), extra.end());
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      std::_Exit(127);
    }
    ::close(fds[1]);
    // Reads what it prints until the marker's line, for at most 120 s (a server
    // that never prints it is a failed start, not a hung test).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    std::string pending;
    char buf[4096];
    while (port_ == 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{fds[0], POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, int(left.count())) <= 0) break;
      const ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      pending.append(buf, size_t(n));
      for (size_t nl; (nl = pending.find('\n')) != std::string::npos; pending.erase(0, nl + 1)) {
        const std::string line = pending.substr(0, nl + 1);
        log_ += line;
        // The marker names http://; a server with tls_cert says https://.
        for (const std::string& m : {marker, std::string(marker).replace(marker.find("http://"), 7, "https://")})
          if (auto pos = line.find(m); pos != std::string::npos && port_ == 0)
            port_ = std::atoi(line.c_str() + pos + m.size());
      }
    }
    log_ += pending;
    out_ = ::fdopen(fds[0], "r");  // kept open so the server never writes to a closed pipe
  }

  pid_t pid_ = -1;
  uint64_t descriptor_limit_ = 0;
  FILE* out_ = nullptr;
  int port_ = 0;
  std::string log_;
};

}  // namespace affinity::testing
