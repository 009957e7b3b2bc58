// The contract of a serving process's components: the parts with a life and a
// report of their own (the storage guard, the checkpointer, the snapshot
// manager, the model watcher, drift, experiments, the feature store view, the
// batch schedule, the HTTP server's connections). A server holds them in start
// order and stops them in reverse; /admin/stats, /readyz, /metrics and the
// admin routes are built by asking each in turn, so a new operational part is
// its own folder plus one registration line in server/serve.cc
// (docs/architecture.md, "Components"). No HTTP or Prometheus type appears
// here: `api` implements the sink and serves the routes.
// Thread safety: the report methods and route handlers are called from the
// HTTP server's threads while the component runs, so they must be safe for
// concurrent use; Start and Stop are called once each, from one thread.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/json_writer.h"
#include "base/refused_file.h"

namespace affinity {

// Where a component's gauges go at each scrape of /metrics. A family keeps the
// help of its first sample; a series once reported stays until the process ends.
class MetricsSink {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;
  virtual ~MetricsSink() = default;
  virtual void Gauge(std::string_view name, std::string_view help, const Labels& labels, double value) = 0;
  void Gauge(std::string_view name, std::string_view help, double value) { Gauge(name, help, {}, value); }
};

// What a component says about the process's health: the names /readyz lists
// under "degraded" while the server still serves, and the files it refused.
struct Health {
  std::vector<std::string> degraded;
  std::vector<RefusedFile> refused;
  // Files refused now: listed, and `part` degraded while there are any.
  void Refuse(std::string part, std::vector<RefusedFile> files) {
    if (files.empty()) return;
    degraded.push_back(std::move(part));
    for (RefusedFile& f : files) refused.push_back(std::move(f));
  }
};

// Who may call a route (the access control reads it from the route table).
enum class Scope { kPublic, kQuery, kFeedback, kAdmin };
std::string_view ScopeName(Scope s);

// An admin route's request: its method, the pattern's path parameters and
// the URL's query parameters, both URL-decoded. A route that names query
// parameters gets only those (any other is refused with 422 before the
// handler runs); a route that names none is not given the query string.
struct AdminRequest {
  std::string method;
  std::string path;
  std::map<std::string, std::string> args;
  std::map<std::string, std::string> params;
  std::string body;
};

// Its answer: a JSON body with a status. An error the handler returns as a
// Status is mapped as every route maps one (InvalidArgument 422, NotFound 404,
// …); one with its own code is made with Error.
struct AdminReply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  static AdminReply Error(int status, std::string_view code, std::string_view message) {
    return {status, JsonError(code, message)};
  }
};

struct AdminRoute {
  std::string method;   // GET, POST, …
  std::string pattern;  // "/admin/drift", "/admin/features/{group}/{entity_id}"; {name*} takes the rest
  std::string name;     // the route's name in /metrics (affinity_http_requests_total{route})
  Scope scope = Scope::kAdmin;
  bool writes = false;  // admitted by the storage guard first (507 while the volume is full)
  std::vector<std::string> params;  // the URL query parameters it takes
  std::function<absl::StatusOr<AdminReply>(const AdminRequest&)> handle;
};

class Component {
 public:
  virtual ~Component() = default;
  // Its name in logs and in the registration order.
  virtual std::string_view name() const = 0;
  // Starts its threads (a failure to do its work later is a status it reports, not a failed start).
  virtual void Start() {}
  // Stops its threads; after it, nothing of it runs (called once, in reverse start order).
  virtual void Stop() {}
  // Its members of /admin/stats's object (by custom one key named after it).
  virtual void WriteStats(JsonWriter& w) const {}
  // Its members of /readyz's object.
  virtual void WriteReady(JsonWriter& w) const {}
  virtual void ReportMetrics(MetricsSink& sink) const {}
  virtual void ReportHealth(Health& health) const {}
  virtual std::vector<AdminRoute> Routes() { return {}; }
};

// The components of a process: Add registers one (the order /admin/stats,
// /readyz and /metrics report them in); Start starts one and keeps it;
// StopAll stops the started ones in reverse start order.
class Components {
 public:
  void Add(Component* c) { all_.push_back(c); }
  void Start(Component* c) {
    c->Start();
    started_.push_back(c);
  }
  void StopAll() {
    for (auto it = started_.rbegin(); it != started_.rend(); ++it) (*it)->Stop();
    started_.clear();
  }
  const std::vector<Component*>& all() const { return all_; }

 private:
  std::vector<Component*> all_, started_;
};

}  // namespace affinity
