// The HTTP API of CONTRACT.md: request parsing and validation (simdjson), error
// mapping ({"error":{"code","message"}} with 400/404/405/413/422/500/503), and
// dispatch to the ingestor, the query engine and the admin views.
// Thread safety: Handle() is safe for concurrent use.
#pragma once

#include <atomic>
#include <string>

#include "api/http_server.h"
#include "api/metrics.h"
#include "audit/audit_log.h"
#include "base/clock.h"
#include "features/snapshot.h"
#include "serving/query_engine.h"
#include "state/ingestor.h"
#include "store/store.h"

namespace affinity {

struct ApiDeps {
  const Config* config;
  Store* store;
  EntityRegistry* registry;
  LiveState* live;
  Ingestor* ingestor;
  QueryEngine* engine;
  SnapshotManager* snapshots;
  AuditLog* audit;
  Metrics* metrics;
  const Clock* clock;
};

class ApiRoutes {
 public:
  explicit ApiRoutes(ApiDeps deps) : d_(deps) {}
  HttpResponse Handle(const HttpRequest& req);
  void SetReady(bool ready) { ready_ = ready; }

 private:
  HttpResponse Route(const HttpRequest& req, std::string* route);
  HttpResponse Query(const HttpRequest& req);
  HttpResponse Feedback(const HttpRequest& req);
  HttpResponse Entities(const HttpRequest& req);
  HttpResponse Ready();
  HttpResponse MetricsText();
  HttpResponse Stats();
  HttpResponse Audit(const std::string& id);

  ApiDeps d_;
  std::atomic<bool> ready_{false};
};

}  // namespace affinity
