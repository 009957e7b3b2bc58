// What the HTTP port answers while a server is still loading its state (the
// port opens first, so that probes can tell "starting" from "dead"):
//   GET /healthz  200 {"status":"ok","ready":false}        (alive: do not restart it)
//   GET /readyz   503 not_ready, with the loading stage and progress
//   anything else 503 unavailable with Retry-After: 1
// HEAD on /healthz and /readyz answers as GET (without the body); other
// methods get the same 405 as when ready.
// Thread safety: Handle() is safe for concurrent use with the loader's updates.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "api/http_server.h"

namespace affinity {

// Written by the thread that loads the state, read by the HTTP threads.
struct StartupProgress {
  std::atomic<const char*> stage{"starting"};  // a static string: "opening the store", ...
  std::atomic<uint64_t> events{0};             // events replayed so far
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

class StartupRoutes {
 public:
  explicit StartupRoutes(const StartupProgress* progress) : progress_(progress) {}
  HttpResponse Handle(const HttpRequest& req) const;

 private:
  const StartupProgress* progress_;
};

}  // namespace affinity
