// The HTTP API (docs/openapi.yaml): routing by path and method, error
// mapping ({"error":{"code","message"}} with 400/404/405/413/422/500/503), and
// dispatch to the ingestor, the query engine and the admin views.
// Thread safety: Handle() is safe for concurrent use.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "api/http_server.h"
#include "api/metrics.h"
#include "access/access.h"
#include "access/rate_limiter.h"
#include "api/route_table.h"
#include "base/component.h"
#include "base/config.h"
#include "base/json_writer.h"
#include "experiments/experiment_service.h"
#include "serving/query_engine.h"
#include "state/catalog.h"
#include "state/idempotency_keys.h"
#include "state/ingestor.h"

namespace affinity {

struct ApiDeps {
  const ServerOptions* server;
  Ingestor* ingestor;          // POST /affinity/feedback, /affinity/entities, PATCH and DELETE /affinity/entities/{id}
  const Catalog* catalog;      // GET /affinity/entities[/{id}], /affinity/viewers/{id}/events
  QueryEngine* engine;         // POST /affinity/query, GET /affinity/entities/{id}/similar
  Metrics* metrics;
  ExperimentService* experiments = nullptr;  // /admin/experiments; null: no experiments (every response names none)
  // The process's components in registration order: their members of
  // /admin/stats and /readyz, their gauges in /metrics, their admin routes.
  std::vector<Component*> components;
  // Every write route asks it first (the storage guard: 507 while the volume
  // is full); null admits every write.
  std::function<absl::Status()> admit;
  // API keys and their scopes ([auth]); null or without keys: every route open.
  // A key with rate_per_s is held to it (429 with Retry-After beyond).
  const Keyring* keyring = nullptr;
  // Admin actions made with a key (every admin route but GET) are recorded
  // there, naming the key; null: not recorded.
  AuditLog* audit = nullptr;
};

class ApiRoutes {
 public:
  explicit ApiRoutes(ApiDeps deps);
  HttpResponse Handle(const HttpRequest& req);
  void SetReady(bool ready) { ready_ = ready; }
  // Every route this server answers (the API's own, then the components').
  const RouteTable& routes() const { return table_; }

 private:
  void AddRoute(const char* method, const char* pattern, const char* name, Scope scope, bool writes,
                std::function<HttpResponse(const HttpRequest&, const PathArgs&)> handle);
  void AddApiRoutes();
  void AddExperimentRoutes();  // experiment_routes.cc
  void AddComponentRoutes();
  HttpResponse Route(const HttpRequest& req, std::string* route);
  // The access step (shared/CONTRACT.md, Access): the key's scope, then its
  // rate. Nothing when the request may go on (*key: the caller's key, or null
  // when access control is off).
  std::optional<HttpResponse> Access(const HttpRequest& req, const RouteEntry& entry, const ApiKey** key);
  // A query's deadline_ms beyond the configured one needs an admin key (when
  // access control is on): the 403 naming it, or nothing.
  std::optional<HttpResponse> LongDeadlineRefusal(const HttpRequest& req, int deadline_ms) const;
  void ReportLimits();  // the limits and their counts, into d_.metrics (component_views.cc)
  // Records an admin action made with a key (audit/audit_record.h, AdminAction)
  // and names its record in the answer's X-Affinity-Audit-Id.
  void AuditAdminAction(const HttpRequest& req, const RouteEntry& entry, HttpResponse* resp);
  HttpResponse Query(const HttpRequest& req);
  HttpResponse Feedback(const HttpRequest& req);
  // A batch write made once per Idempotency-Key (idempotent_routes.cc). A
  // batch is accepted whole or not at all, so its `answer` is known before the
  // write: `write` applies the batch and stores the record it is given (null
  // without a key; its status and body are the answer's) in the same write.
  // Returns the answer, or the write's error.
  using KeyedWrite = std::function<absl::Status(IdempotencyRecord* key)>;
  HttpResponse Idempotent(const HttpRequest& req, const std::optional<std::string>& body_key,
                          const std::string& route, HttpResponse answer, const KeyedWrite& write);
  // The entity routes (entity_routes.cc).
  HttpResponse Entities(const HttpRequest& req);
  HttpResponse ListEntities(const std::string& query);
  HttpResponse GetEntity(const std::string& id);
  HttpResponse PatchEntity(const std::string& id, const std::string& body);
  HttpResponse DeleteEntity(const std::string& id);
  HttpResponse Similar(const std::string& id, const std::string& query);
  HttpResponse ViewerEvents(const std::string& viewer_id, const std::string& query);
  // The components' report (component_views.cc).
  HttpResponse Ready();
  HttpResponse MetricsText();
  HttpResponse Stats();
  Health CurrentHealth() const;
  HttpResponse Ui();
  // The experiment routes (experiment_routes.cc).
  HttpResponse CreateExperiment(const HttpRequest& req);
  HttpResponse StopExperiment(const HttpRequest& req, const std::string& id);

  ApiDeps d_;
  IdempotencyKeys keys_;
  RouteTable table_;
  std::atomic<bool> ready_{false};
  std::unique_ptr<RateLimiter> rates_;  // with access control on
  // Requests being handled now (health routes aside), the most allowed at
  // once ([server] max_in_flight) and those answered 503 overloaded.
  std::atomic<int64_t> in_flight_{0};
  int64_t max_in_flight_ = 0;
  std::atomic<uint64_t> overloaded_{0};
};

}  // namespace affinity
