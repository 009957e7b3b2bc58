#include "api/routes.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <initializer_list>
#include <map>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "api/requests.h"
#include "api/route_util.h"
#include "api/ui_page.h"
#include "audit/audit_record.h"
#include "experiments/experimental_query_engine.h"
#include "query/response_json.h"
#include "serving/query_cursor.h"
#include "base/descriptors.h"
#include "base/json_writer.h"
#include "base/status.h"
#include "base/strings.h"

namespace affinity {
namespace {

HttpResponse Error(int status, std::string_view code, std::string_view message) {
  return ErrorResponse(status, code, message);
}

constexpr const char* kRefusedRoute = "refused_storage";  // the metrics' route of writes the guard refused

// [server] max_in_flight, 0 resolved: 4 requests per core. Queries are CPU
// work within a deadline; more at once than a few per core only makes each
// one later (docs/security.md, Limits).
int64_t MaxInFlight(const ServerOptions* server) {
  if (server && server->max_in_flight > 0) return server->max_in_flight;
  return 4 * int64_t(std::max(1u, std::thread::hardware_concurrency()));
}

// One request counted as in flight while it lives.
class InFlight {
 public:
  explicit InFlight(std::atomic<int64_t>* n) : n_(n), now_(n->fetch_add(1, std::memory_order_relaxed) + 1) {}
  ~InFlight() { n_->fetch_sub(1, std::memory_order_relaxed); }
  int64_t now() const { return now_; }  // this request included

 private:
  std::atomic<int64_t>* n_;
  int64_t now_;
};

HttpResponse WithRetryAfter(HttpResponse r, int64_t seconds) {
  r.headers.emplace_back("Retry-After", std::to_string(seconds));
  return r;
}

}  // namespace

ApiRoutes::ApiRoutes(ApiDeps deps)
    : d_(std::move(deps)), keys_(d_.ingestor ? d_.ingestor->store() : nullptr), max_in_flight_(MaxInFlight(d_.server)) {
  if (d_.keyring && d_.keyring->enabled()) rates_ = std::make_unique<RateLimiter>(d_.keyring->keys());
  AddApiRoutes();
  if (d_.experiments) AddExperimentRoutes();
  AddComponentRoutes();
}

void ApiRoutes::AddRoute(const char* method, const char* pattern, const char* name, Scope scope, bool writes,
                         std::function<HttpResponse(const HttpRequest&, const PathArgs&)> handle) {
  absl::Status added = table_.Add({method, pattern, name, scope, writes, std::move(handle)});
  if (!added.ok()) spdlog::error("route not added: {}", std::string(added.message()));
}

// The API's own routes; the scopes are those of the access rules
// (docs/openapi.yaml): a person's history is admin.
void ApiRoutes::AddApiRoutes() {
  using S = Scope;
  AddRoute("GET", "/healthz", "healthz", S::kPublic, false,
           [](const HttpRequest&, const PathArgs&) { return HttpResponse{200, "{\"status\":\"ok\"}"}; });
  AddRoute("GET", "/readyz", "readyz", S::kPublic, false, [this](const HttpRequest&, const PathArgs&) { return Ready(); });
  AddRoute("POST", "/affinity/query", "query", S::kQuery, false,
           [this](const HttpRequest& r, const PathArgs&) { return Query(r); });
  AddRoute("POST", "/affinity/feedback", "feedback", S::kFeedback, true,
           [this](const HttpRequest& r, const PathArgs&) { return Feedback(r); });
  AddRoute("GET", "/affinity/entities", "entities", S::kQuery, false,
           [this](const HttpRequest& r, const PathArgs&) { return ListEntities(r.query); });
  AddRoute("POST", "/affinity/entities", "entities", S::kFeedback, true,
           [this](const HttpRequest& r, const PathArgs&) { return Entities(r); });
  // An id ending in "/similar" is written %2F-escaped in the path.
  AddRoute("GET", "/affinity/entities/{id*}/similar", "entity_similar", S::kQuery, false,
           [this](const HttpRequest& r, const PathArgs& a) {
             if (auto bad = BadId(a.at("id"), "id (in the path)")) return *bad;
             return Similar(a.at("id"), r.query);
           });
  auto entity = [this](auto&& handle) {
    return [this, handle](const HttpRequest& r, const PathArgs& a) {
      if (auto bad = BadId(a.at("id"), "id (in the path)")) return *bad;
      return handle(r, a.at("id"));
    };
  };
  AddRoute("GET", "/affinity/entities/{id*}", "entity", S::kQuery, false,
           entity([this](const HttpRequest&, const std::string& id) { return GetEntity(id); }));
  AddRoute("PATCH", "/affinity/entities/{id*}", "entity", S::kFeedback, true,
           entity([this](const HttpRequest& r, const std::string& id) { return PatchEntity(id, r.body); }));
  AddRoute("DELETE", "/affinity/entities/{id*}", "entity", S::kFeedback, true,
           entity([this](const HttpRequest&, const std::string& id) { return DeleteEntity(id); }));
  AddRoute("GET", "/affinity/viewers/{viewer_id*}/events", "viewer_events", S::kAdmin, false,
           [this](const HttpRequest& r, const PathArgs& a) {
             if (auto bad = BadId(a.at("viewer_id"), "viewer id (in the path)")) return *bad;
             return ViewerEvents(a.at("viewer_id"), r.query);
           });
  AddRoute("GET", "/metrics", "metrics", S::kAdmin, false, [this](const HttpRequest&, const PathArgs&) { return MetricsText(); });
  AddRoute("GET", "/admin/stats", "stats", S::kAdmin, false, [this](const HttpRequest&, const PathArgs&) { return Stats(); });
  for (const char* ui : {"/admin/ui", "/admin/ui/"})
    AddRoute("GET", ui, "ui", S::kAdmin, false, [this](const HttpRequest&, const PathArgs&) { return Ui(); });
}

HttpResponse ApiRoutes::Handle(const HttpRequest& req) {
  auto t0 = std::chrono::steady_clock::now();
  std::string route = "unknown";
  // HEAD is GET without the body (the server leaves the body out).
  HttpResponse resp;
  if (req.method == "HEAD") {
    HttpRequest get = req;
    get.method = "GET";
    resp = Route(get, &route);
  } else {
    resp = Route(req, &route);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  d_.metrics->ObserveRequest(route, resp.status, secs);
  return resp;
}

HttpResponse ApiRoutes::Route(const HttpRequest& req, std::string* route) {
  RouteTable::Match m = table_.Find(req.method, req.path);
  if (m.name.empty()) return Error(404, "not_found", "no route for " + req.method + " " + req.path);
  *route = m.name;
  if (!m.entry) {  // each route answers its methods; any other gets a 405 naming them
    std::string methods = m.allow;  // "GET, PATCH, DELETE" -> "GET, PATCH or DELETE"
    if (const size_t last = methods.rfind(", "); last != std::string::npos) methods.replace(last, 2, " or ");
    HttpResponse r = Error(405, "method_not_allowed", "use " + methods + " for " + req.path);
    r.headers.emplace_back("Allow", m.allow);
    return r;
  }
  // At most max_in_flight requests are handled at once; beyond, a quick 503
  // (the health routes always answer: they say whether the process lives).
  std::optional<InFlight> in_flight;
  if (m.name != "healthz" && m.name != "readyz") {
    in_flight.emplace(&in_flight_);
    if (in_flight->now() > max_in_flight_) {
      overloaded_.fetch_add(1, std::memory_order_relaxed);
      return WithRetryAfter(Error(503, "overloaded",
                                  "the server is handling its maximum of " + std::to_string(max_in_flight_) +
                                      " requests at once; retry shortly"),
                            1);
    }
  }
  const ApiKey* key = nullptr;
  if (auto refused = Access(req, *m.entry, &key)) return *refused;
  // Every write meets the volume's budget first (state/storage_guard.h):
  // refused with 507 while the volume is full or failing; queries and reads go on.
  if (m.entry->writes && d_.admit) {
    if (absl::Status admitted = d_.admit(); !admitted.ok()) {
      *route = kRefusedRoute;
      return FromStatus(admitted);
    }
  }
  if (!key) return m.entry->handle(req, m.args);
  HttpRequest named = req;  // the handlers and the audit records name the key
  named.key_name = key->name;
  HttpResponse resp = m.entry->handle(named, m.args);
  AuditAdminAction(named, *m.entry, &resp);
  return resp;
}

void ApiRoutes::AuditAdminAction(const HttpRequest& req, const RouteEntry& entry, HttpResponse* resp) {
  if (!d_.audit || entry.scope != Scope::kAdmin || req.method == "GET") return;
  const int64_t now = SystemClock::Default()->NowMillis();
  std::string id = NewAdminActionId(now);
  // A route about a person (forget) is recorded by its pattern: the record of
  // forgetting someone must not keep their id.
  const bool names_person = entry.pattern.find("/viewers/") != std::string::npos;
  const AdminAction action{entry.name, req.method, names_person ? entry.pattern : req.path, req.key_name, resp->status};
  if (d_.audit->Record(id, BuildAdminActionRecord(id, action, now))) resp->headers.emplace_back("X-Affinity-Audit-Id", id);
}

std::optional<HttpResponse> ApiRoutes::Access(const HttpRequest& req, const RouteEntry& entry, const ApiKey** key) {
  if (!d_.keyring || !d_.keyring->enabled()) return std::nullopt;
  // The caller's key must carry the route's scope (shared/CONTRACT.md, Access);
  // a forced arm can name an unreleased model, so it needs an admin key.
  const bool forced_arm = !req.Header("x-affinity-force-arm").empty();
  AccessDecision access = d_.keyring->Authorize(req.Header("authorization"), entry.scope, forced_arm);
  if (access.status != 200) {
    HttpResponse r = Error(access.status, access.code, access.message);
    if (access.status == 401) {
      if (access.challenge_basic) r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"affinity\", charset=\"UTF-8\"");
      r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"affinity\"");
    }
    return r;
  }
  // Then the key's rate (access/rate_limiter.h): lock-free, a bucket per key.
  if (access.key && rates_) {
    const int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::steady_clock::now().time_since_epoch()).count();
    const RateDecision rate = rates_->Take(*access.key, now_ns);
    if (!rate.allowed)
      return WithRetryAfter(Error(429, "rate_limited",
                                  "key '" + access.key->name + "' is over its rate of " +
                                      absl::StrCat(access.key->rate_per_s) + " requests per second; retry after " +
                                      std::to_string(rate.retry_after_s) + " s"),
                            rate.retry_after_s);
  }
  *key = access.key;
  return std::nullopt;
}

std::optional<HttpResponse> ApiRoutes::LongDeadlineRefusal(const HttpRequest& req, int deadline_ms) const {
  const int configured = d_.engine->options().deadline_ms;
  if (deadline_ms <= configured || !d_.keyring || !d_.keyring->enabled()) return std::nullopt;
  // Rare (a deadline beyond the configured one): the key is looked up again.
  const ApiKey* key = d_.keyring->Authenticate(req.Header("authorization"), false);
  if (key && (key->scopes & ScopeBit(Scope::kAdmin))) return std::nullopt;
  return Error(403, "forbidden",
               "deadline_ms " + std::to_string(deadline_ms) + " is beyond the configured " + std::to_string(configured) +
                   " ms; key '" + (key ? key->name : std::string("?")) + "' lacks the admin scope a longer deadline needs");
}

HttpResponse ApiRoutes::Query(const HttpRequest& req) {
  QueryRequest q;
  if (RequestError e = ParseQueryRequest(req.body, &q); !e.ok()) return Error(e.status, e.code, e.message);
  if (auto refused = LongDeadlineRefusal(req, q.deadline_ms)) return *refused;
  // A later page: the same query without what earlier pages served.
  const QueryRequest asked = q;
  OpenedCursor cursor;
  if (!q.cursor.empty()) {
    cursor = OpenCursor(q.cursor, q, SystemClock::Default()->NowMillis());
    if (cursor.problem == CursorProblem::kExpired) return Error(410, "cursor_expired", cursor.message);
    if (cursor.problem != CursorProblem::kNone) return Error(422, "invalid", cursor.message);
    for (DenseId id : cursor.cursor.served) q.exclude.push_back(d_.catalog->registry().ExtId(Ref(q.target, id)));
  }
  q.key_name = req.key_name;
  auto r = ExperimentalQueryEngine(d_.engine, d_.experiments).Query(q, req.Header("x-affinity-force-arm"));
  if (const std::optional<ForcedArmRefusal> refused = ForcedArmRefusalOf(r.status()))
    return refused->reason == ForcedArmRefusal::kTurnedOff ? Error(403, "forbidden", refused->message)
                                                           : Error(422, "invalid_header", refused->message);
  if (!r.ok()) return FromStatus(r.status());
  d_.metrics->ObserveQuery(*r);
  r->paged = true;
  r->next_cursor = NextCursor(asked, q.cursor.empty() ? nullptr : &cursor.cursor, *r,
                              SystemClock::Default()->NowMillis());
  JsonWriter w;
  WriteResponseJson(*r, q.explain, ResponseForm::kWire, /*with_inputs=*/false, w);
  return {200, w.Release()};
}

HttpResponse ApiRoutes::Feedback(const HttpRequest& req) {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<RawEvent> events;
  std::optional<std::string> body_key;
  if (RequestError e =
          ParseFeedbackRequest(req.body, size_t(d_.server->max_events_per_batch), &events, &body_key);
      !e.ok())
    return Error(e.status, e.code, e.message);
  JsonWriter w;
  w.BeginObject().Key("accepted").Uint(events.size()).EndObject();
  return Idempotent(req, body_key, "feedback", HttpResponse(202, w.Release()), [&](IdempotencyRecord* key) {
    auto n = d_.ingestor->AddFeedback(events, {"events"}, key);
    if (!n.ok()) return n.status();
    d_.metrics->AddEvents(*n);
    // Durable and applied to the live state: the next query sees it.
    d_.metrics->ObserveEventVisible(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    return absl::OkStatus();
  });
}

HttpResponse ApiRoutes::ViewerEvents(const std::string& viewer_id, const std::string& query) {
  std::map<std::string, std::string> params;
  if (auto bad = QueryParams(query, {"limit"}, &params)) return *bad;
  int64_t limit = 50;
  if (auto it = params.find("limit"); it != params.end()) {
    auto n = ParseInt64(it->second);
    if (!n || *n < 1 || *n > int64_t(ViewerState::kMaxFeedback))
      return Error(422, "invalid", "limit must be an integer from 1 to " + std::to_string(ViewerState::kMaxFeedback));
    limit = *n;
  }
  auto events = d_.catalog->RecentEvents(viewer_id, size_t(limit));
  if (!events.ok()) return FromStatus(events.status());
  JsonWriter w;
  w.BeginObject().Key("viewer_id").String(viewer_id).Key("events").BeginArray();
  for (const ViewerEvent& e : *events) {
    w.BeginObject().Key("offset").Uint(e.offset).Key("ts").Int(e.ts).Key("entity_id").String(e.entity_id);
    w.Key("action").String(ActionName(e.action)).Key("weight").Double(e.weight);
    if (!e.context.empty()) w.Key("context").Raw(e.context);
    w.EndObject();
  }
  w.EndArray().EndObject();
  return {200, w.Release()};
}

}  // namespace affinity
