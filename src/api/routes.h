// The HTTP API (docs/openapi.yaml): routing by path and method, error
// mapping ({"error":{"code","message"}} with 400/404/405/413/422/500/503), and
// dispatch to the ingestor, the query engine and the admin views.
// Thread safety: Handle() is safe for concurrent use.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "api/http_server.h"
#include "api/metrics.h"
#include "base/config.h"
#include "experiments/experiment_service.h"
#include "models/model_watcher.h"
#include "server/batch_schedule.h"
#include "state/catalog.h"
#include "models/drift_service.h"
#include "admin/feature_service.h"
#include "serving/query_engine.h"
#include "admin/service_status.h"
#include "state/checkpointer.h"
#include "state/idempotency_keys.h"
#include "state/ingestor.h"
#include "state/storage_guard.h"
#include "base/json_writer.h"

namespace affinity {

struct ApiDeps {
  const Config* config;
  Ingestor* ingestor;          // POST /affinity/feedback, /affinity/entities, PATCH and DELETE /affinity/entities/{id}
  const Catalog* catalog;      // GET /affinity/entities[/{id}], /affinity/viewers/{id}/events
  QueryEngine* engine;         // POST /affinity/query, GET /affinity/entities/{id}/similar
  const ServiceStatus* status; // /readyz, /metrics, /admin/*
  Metrics* metrics;
  ExperimentService* experiments = nullptr;  // /admin/experiments; null: no experiments (every response names none)
  const FeatureService* features = nullptr;  // /admin/features; null: not served (404)
  const BatchSchedule* batch_schedule = nullptr;  // serve --batch-every; null: none
  const ModelWatcher* models = nullptr;           // GET /admin/models; null: 404
  const DriftService* drift = nullptr;            // GET /admin/drift; null: 404
  Checkpointer* checkpointer = nullptr;           // POST /admin/checkpoint, /admin/stats "live_state"; null: 404
  StorageGuard* storage = nullptr;  // every write admitted by it first; /readyz, /admin/stats, /metrics say its state
  const HttpServer* http = nullptr;  // the server in front: its connections in /admin/stats and /metrics
};

class ApiRoutes {
 public:
  explicit ApiRoutes(ApiDeps deps) : d_(deps), keys_(deps.ingestor ? deps.ingestor->store() : nullptr) {}
  HttpResponse Handle(const HttpRequest& req);
  void SetReady(bool ready) { ready_ = ready; }

 private:
  HttpResponse Route(const HttpRequest& req, std::string* route);
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
  HttpResponse EntityRoute(const HttpRequest& req, std::string* route);
  HttpResponse Entities(const HttpRequest& req);
  HttpResponse ListEntities(const std::string& query);
  HttpResponse GetEntity(const std::string& id);
  HttpResponse PatchEntity(const std::string& id, const std::string& body);
  HttpResponse DeleteEntity(const std::string& id);
  HttpResponse Similar(const std::string& id, const std::string& query);
  HttpResponse ViewerEvents(const std::string& viewer_id, const std::string& query);
  HttpResponse Ready();
  void WriteStorage(const StorageGuard::State& s, JsonWriter& w);
  // The snapshot and model files refused at load now (base/refused_file.h).
  std::vector<RefusedFile> Refused() const;
  void WriteRefused(const std::vector<RefusedFile>& refused, JsonWriter& w);
  HttpResponse MetricsText();
  HttpResponse Stats();
  HttpResponse Audit(const std::string& id);
  HttpResponse Experiments(const HttpRequest& req, std::string* route);
  HttpResponse Features(const std::string& rest, const std::string& query);
  HttpResponse Models();
  HttpResponse Checkpoint();
  HttpResponse Ui();

  ApiDeps d_;
  IdempotencyKeys keys_;
  std::atomic<bool> ready_{false};
};

}  // namespace affinity
