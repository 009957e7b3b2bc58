#include "api/startup_routes.h"

#include <string>

#include "base/json_writer.h"

namespace affinity {

HttpResponse StartupRoutes::Handle(const HttpRequest& req) const {
  const bool probe = req.path == "/healthz" || req.path == "/readyz";
  // HEAD is GET without the body (the server leaves it out).
  if (probe && req.method != "GET" && req.method != "HEAD") {
    HttpResponse r{405, JsonError("method_not_allowed", "use GET for " + req.path)};
    r.headers.emplace_back("Allow", "GET");
    return r;
  }
  if (req.path == "/healthz") return {200, "{\"status\":\"ok\",\"ready\":false}"};
  const std::string stage = progress_->stage.load(std::memory_order_acquire);
  const uint64_t events = progress_->events.load(std::memory_order_relaxed);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - progress_->started).count();
  std::string message = "starting: " + stage;
  if (events > 0) message += " (" + std::to_string(events) + " events so far)";
  JsonWriter w;
  w.BeginObject();
  w.Key("error").BeginObject();
  w.Key("code").String(probe ? "not_ready" : "unavailable").Key("message").String(message);
  w.EndObject();
  w.Key("progress").BeginObject();
  w.Key("stage").String(stage).Key("events").Uint(events).Key("seconds").Double(seconds);
  w.EndObject();
  w.EndObject();
  HttpResponse r{503, w.Release()};
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

}  // namespace affinity
