// The process's file descriptors as a budget: the limit raised to the hard
// limit at start (systemd's default soft limit is 1,024, which about a
// thousand idle connections exhaust), and what is open now, for /admin/stats.
// Thread safety: pure functions over the process's state.
#pragma once

#include <sys/resource.h>

#include <cstdint>
#include <filesystem>
#include <system_error>

namespace affinity {

struct DescriptorLimit {
  uint64_t soft = 0, hard = 0;
  bool raised = false;  // the soft limit was below the hard one and was raised to it
};

// Raises the soft RLIMIT_NOFILE to the hard limit and says what it is now.
inline DescriptorLimit RaiseDescriptorLimit() {
  DescriptorLimit out;
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return out;
  if (r.rlim_cur < r.rlim_max) {
    rlimit raised = r;
    raised.rlim_cur = r.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) out.raised = true, r = raised;
  }
  out.soft = uint64_t(r.rlim_cur);
  out.hard = uint64_t(r.rlim_max);
  return out;
}

inline DescriptorLimit CurrentDescriptorLimit() {
  DescriptorLimit out;
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) == 0) out.soft = uint64_t(r.rlim_cur), out.hard = uint64_t(r.rlim_max);
  return out;
}

// Descriptors open in this process now (0 when /proc is not there).
inline uint64_t OpenDescriptors() {
  std::error_code ec;
  uint64_t n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec))
    ++n;
  return n;
}

}  // namespace affinity
