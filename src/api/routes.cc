#include "api/routes.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <initializer_list>
#include <map>
#include <optional>

#include "api/requests.h"
#include "api/route_util.h"
#include "api/ui_page.h"
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

}  // namespace

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
  const std::string& p = req.path;
  // Each route answers its methods; any other gets a 405 with an Allow header.
  auto only = [&](const char* name, const char* method, auto&& handle) -> HttpResponse {
    *route = name;
    if (req.method == method) return handle();
    HttpResponse r = Error(405, "method_not_allowed", "use " + std::string(method) + " for " + p);
    r.headers.emplace_back("Allow", method);
    return r;
  };
  // Every write meets the volume's budget first (state/storage_guard.h):
  // refused with 507 while the volume is full or failing; queries and reads go on.
  const bool writes = req.method != "GET" && req.method != "HEAD" && p != "/affinity/query";
  if (writes && d_.storage) {
    if (absl::Status admitted = d_.storage->Admit(); !admitted.ok()) {
      *route = kRefusedRoute;
      return FromStatus(admitted);
    }
  }
  const std::string entity_prefix = "/affinity/entities/", viewer_prefix = "/affinity/viewers/";
  if (p.rfind(entity_prefix, 0) == 0 && p.size() > entity_prefix.size()) return EntityRoute(req, route);
  if (p.rfind(viewer_prefix, 0) == 0 && p.size() > viewer_prefix.size() + 7 &&
      p.compare(p.size() - 7, 7, "/events") == 0) {
    const std::string id = UrlDecode(p.substr(viewer_prefix.size(), p.size() - viewer_prefix.size() - 7));
    return only("viewer_events", "GET", [&] {
      if (auto bad = BadId(id, "viewer id (in the path)")) return *bad;
      return ViewerEvents(id, req.query);
    });
  }
  if (p == "/affinity/query") return only("query", "POST", [&] { return Query(req); });
  if (p == "/affinity/feedback") return only("feedback", "POST", [&] { return Feedback(req); });
  if (p == "/affinity/entities") {
    *route = "entities";
    if (req.method == "POST") return Entities(req);
    if (req.method == "GET") return ListEntities(req.query);
    HttpResponse r = Error(405, "method_not_allowed", "use GET or POST for " + p);
    r.headers.emplace_back("Allow", "GET, POST");
    return r;
  }
  if (p == "/healthz") return only("healthz", "GET", [] { return HttpResponse{200, "{\"status\":\"ok\"}"}; });
  if (p == "/readyz") return only("readyz", "GET", [&] { return Ready(); });
  if (p == "/metrics") return only("metrics", "GET", [&] { return MetricsText(); });
  if (p == "/admin/stats") return only("stats", "GET", [&] { return Stats(); });
  if (p == "/admin/experiments" || p.rfind("/admin/experiments/", 0) == 0) return Experiments(req, route);
  if (p == "/admin/models") return only("models", "GET", [&] { return Models(); });
  if (p == "/admin/checkpoint") return only("checkpoint", "POST", [&] { return Checkpoint(); });
  if (p == "/admin/drift")
    return only("drift", "GET", [&] {
      return d_.drift ? HttpResponse{200, d_.drift->Json()} : Error(404, "not_found", "no drift monitor here");
    });
  if (p == "/admin/ui" || p == "/admin/ui/") return only("ui", "GET", [&] { return Ui(); });
  if (p == "/admin/features" || p.rfind("/admin/features/", 0) == 0)
    return only("features", "GET", [&] { return Features(p.size() > 16 ? p.substr(16) : "", req.query); });
  const std::string audit_prefix = "/admin/audit/";
  if (p.rfind(audit_prefix, 0) == 0)
    return only("audit", "GET", [&] { return Audit(UrlDecode(p.substr(audit_prefix.size()))); });
  return Error(404, "not_found", "no route for " + req.method + " " + p);
}

HttpResponse ApiRoutes::Ready() {
  if (!ready_) return Error(503, "not_ready", "loading state");
  JsonWriter w;
  auto snap = d_.status->CurrentSnapshot();
  w.BeginObject().Key("status").String("ready").Key("snapshot").String(snap ? snap->version : "");
  // Still ready for queries when writes are refused: it says what is degraded.
  w.Key("degraded").BeginArray();
  const std::optional<StorageGuard::State> storage =
      d_.storage ? std::optional<StorageGuard::State>(d_.storage->Get()) : std::nullopt;
  if (storage && !storage->writable) w.String("storage");
  const std::vector<RefusedFile> refused = Refused();
  for (const char* kind : {"snapshot", "model"})
    if (std::any_of(refused.begin(), refused.end(), [&](const RefusedFile& r) { return r.kind == kind; }))
      w.String(kind);
  w.EndArray();
  WriteRefused(refused, w);
  if (storage) WriteStorage(*storage, w);
  w.EndObject();
  return {200, w.Release()};
}

std::vector<RefusedFile> ApiRoutes::Refused() const {
  std::vector<RefusedFile> out = d_.status->RefusedSnapshots();
  if (d_.models)
    for (RefusedFile& r : d_.models->refused()) out.push_back(std::move(r));
  return out;
}

void ApiRoutes::WriteRefused(const std::vector<RefusedFile>& refused, JsonWriter& w) {
  w.Key("refused").BeginArray();
  for (const RefusedFile& r : refused) {
    w.BeginObject().Key("kind").String(r.kind).Key("version").String(r.version).Key("reason").String(r.reason);
    w.Key("serving").String(r.serving).Key("since_ms").Int(r.since_ms).EndObject();
  }
  w.EndArray();
}

void ApiRoutes::WriteStorage(const StorageGuard::State& s, JsonWriter& w) {
  w.Key("storage").BeginObject();
  w.Key("writable").Bool(s.writable).Key("read_only").Bool(s.read_only);
  if (!s.writable) w.Key("reason").String(s.reason);
  w.Key("volume").String(d_.storage->path()).Key("free_bytes").Uint(s.free_bytes);
  w.Key("total_bytes").Uint(s.total_bytes).Key("floor_bytes").Uint(s.floor_bytes);
  w.Key("refused_writes").Uint(s.refused).Key("resumes").Uint(s.resumes);
  w.EndObject();
}

HttpResponse ApiRoutes::Features(const std::string& rest, const std::string& query) {
  if (!d_.features) return Error(404, "not_found", "this server has no feature store view");
  if (rest.empty()) return {200, d_.features->ListJson()};
  const size_t slash = rest.find('/');
  if (slash == std::string::npos || slash + 1 >= rest.size())
    return Error(404, "not_found", "use /admin/features/{group}/{entity_id}");
  std::map<std::string, std::string> params;
  if (auto bad = QueryParams(query, {"with"}, &params)) return *bad;
  const std::string entity_id = UrlDecode(rest.substr(slash + 1));
  if (auto bad = BadId(entity_id, "entity_id (in the path)")) return *bad;
  if (params.count("with"))
    if (auto bad = BadId(params["with"], "with")) return *bad;
  auto record = d_.features->RecordJson(UrlDecode(rest.substr(0, slash)), entity_id, params["with"]);
  if (!record.ok()) return FromStatus(record.status());
  return {200, *record};
}

HttpResponse ApiRoutes::Models() {
  if (!d_.models) return Error(404, "not_found", "this server has no model registry view");
  auto st = d_.models->Registry();
  if (!st.ok()) return FromStatus(st.status());
  const std::string loaded = d_.models->current();  // beside what the registry says
  return {200, RegistryJson(*st, &loaded)};
}

HttpResponse ApiRoutes::Ui() {
  HttpResponse r{200, std::string(OperatorPageHtml()), "text/html; charset=utf-8"};
  // Self-contained: nothing outside this server is fetched, and the page says so to the browser.
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                         "connect-src 'self'; img-src 'self' data:");
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

HttpResponse ApiRoutes::Checkpoint() {
  if (!d_.checkpointer) return Error(404, "not_found", "no live state checkpoints here");
  if (!d_.checkpointer->enabled())
    return Error(409, "checkpoints_disabled", "checkpoints are off (state.checkpoint_interval_seconds = 0)");
  auto info = d_.checkpointer->WriteNow();
  if (!info.ok()) return FromStatus(info.status());
  JsonWriter w;
  w.BeginObject().Key("offset").Uint(info->offset).Key("events").Uint(info->events);
  w.Key("created_ms").Int(info->created_ms).Key("bytes").Uint(info->bytes).Key("seconds").Double(info->seconds);
  w.Key("ingest_held_seconds").Double(info->locked_seconds);
  w.EndObject();
  return {200, w.Release()};
}

HttpResponse ApiRoutes::MetricsText() {
  d_.metrics->SetStatus(d_.status->Report());
  if (d_.features) d_.metrics->SetFreshness(d_.features->FreshnessByGroup());
  if (d_.batch_schedule) d_.metrics->SetBatchSchedule(d_.batch_schedule->status());
  if (d_.checkpointer) d_.metrics->SetCheckpoint(d_.checkpointer->status());
  if (d_.storage) d_.metrics->SetStorage(d_.storage->Get());
  if (d_.http) d_.metrics->SetConnections(d_.http->Connections());
  const std::vector<RefusedFile> refused = Refused();
  const auto snapshots = size_t(std::count_if(refused.begin(), refused.end(), [](const RefusedFile& r) {
    return r.kind == "snapshot";
  }));
  d_.metrics->SetRefused(snapshots, refused.size() - snapshots);
  if (d_.drift) d_.metrics->SetDrift(d_.drift->Evaluate());
  if (d_.experiments) d_.metrics->SetExperiments(d_.experiments->Status(), d_.experiments->guardrail_stops());
  return {200, d_.metrics->Render(), "text/plain; version=0.0.4"};
}

HttpResponse ApiRoutes::Query(const HttpRequest& req) {
  QueryRequest q;
  if (RequestError e = ParseQueryRequest(req.body, &q); !e.ok()) return Error(e.status, e.code, e.message);
  // A later page: the same query without what earlier pages served.
  const QueryRequest asked = q;
  OpenedCursor cursor;
  if (!q.cursor.empty()) {
    cursor = OpenCursor(q.cursor, q, SystemClock::Default()->NowMillis());
    if (cursor.problem == CursorProblem::kExpired) return Error(410, "cursor_expired", cursor.message);
    if (cursor.problem != CursorProblem::kNone) return Error(422, "invalid", cursor.message);
    for (DenseId id : cursor.cursor.served) q.exclude.push_back(d_.catalog->registry().ExtId(Ref(q.target, id)));
  }
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
          ParseFeedbackRequest(req.body, size_t(d_.config->server.max_events_per_batch), &events, &body_key);
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

HttpResponse ApiRoutes::Stats() {
  const StatusReport r = d_.status->Report();
  JsonWriter w;
  w.BeginObject();
  w.Key("events").Uint(r.events);
  w.Key("entities").Uint(r.entities);
  w.Key("entities_by_kind").BeginObject();
  for (int k = 0; k < kNumKinds; ++k) w.Key(KindName(Kind(k))).Uint(r.entities_by_kind[k]);
  w.EndObject();
  w.Key("snapshot").String(r.snapshot);
  w.Key("snapshot_swaps").Uint(r.snapshot_swaps);
  if (r.has_snapshot) {
    w.Key("snapshot_age_seconds").Double(r.snapshot_age_seconds);
    w.Key("snapshot_watermark_offset").Uint(r.snapshot_watermark_offset);
    w.Key("stale_feature_groups").BeginArray();
    for (const auto& g : r.stale_feature_groups) w.String(g);
    w.EndArray();
  }
  if (!r.snapshot_error.empty()) w.Key("snapshot_error").String(r.snapshot_error);
  WriteRefused(Refused(), w);
  w.Key("live_events_applied").Uint(r.live_events_applied);
  w.Key("audit_dropped").Uint(r.audit_dropped);
  w.Key("audit_write_errors").Uint(r.audit_write_errors);
  if (d_.storage) WriteStorage(d_.storage->Get(), w);
  const DescriptorLimit fds = CurrentDescriptorLimit();
  w.Key("descriptors").BeginObject().Key("limit").Uint(fds.soft).Key("hard_limit").Uint(fds.hard);
  w.Key("open").Uint(OpenDescriptors()).EndObject();
  if (d_.http) {
    const ConnectionStats c = d_.http->Connections();
    w.Key("connections").BeginObject().Key("open").Uint(c.open).Key("busy").Uint(c.busy).Key("max").Uint(c.cap);
    w.Key("accepted").Uint(c.accepted).Key("refused").Uint(c.refused).Key("evicted_idle").Uint(c.evicted);
    w.Key("header_timeouts").Uint(c.header_timeouts).Key("idle_timeouts").Uint(c.idle_timeouts);
    w.Key("accept_errors").Uint(c.accept_errors).EndObject();
  }
  if (d_.experiments) {
    w.Key("experiments").BeginArray();
    for (const auto& a : d_.experiments->Status()) {
      w.BeginObject().Key("experiment").String(a.experiment).Key("arm").String(a.arm).Key("running").Bool(a.running);
      w.Key("viewers").Int(a.viewers).Key("responses").Int(a.responses).Key("exposures").Int(a.exposures);
      w.Key("clicks").Int(a.clicks).Key("hides").Int(a.hides).EndObject();
    }
    w.EndArray();
    w.Key("experiment_guardrail_stops").Uint(d_.experiments->guardrail_stops());
    w.Key("experiment_write_errors").Uint(d_.experiments->write_errors());
  }
  if (d_.batch_schedule) {
    const BatchSchedule::Status b = d_.batch_schedule->status();
    w.Key("batch_schedule").BeginObject();
    w.Key("every_seconds").Double(double(b.period_ms) / 1000.0).Key("runs").Uint(b.runs).Key("failures").Uint(b.failures);
    w.Key("running").Bool(b.running);
    w.Key("last_start_ms");
    if (b.last_start_ms > 0) w.Int(b.last_start_ms); else w.Null();
    w.Key("last_duration_seconds").Double(b.last_duration_s).Key("last_outcome").String(b.last_outcome);
    w.Key("last_output").String(b.last_output).Key("next_run_ms").Int(b.next_run_ms);
    w.EndObject();
  }
  if (d_.checkpointer) {
    const Checkpointer::Status c = d_.checkpointer->status();
    w.Key("live_state").BeginObject();
    w.Key("load").BeginObject();
    w.Key("from_checkpoint").Bool(c.load.from_checkpoint).Key("replayed_events").Uint(c.load.replayed);
    w.Key("seconds").Double(c.load.seconds);
    if (!c.load.checkpoint_refused.empty()) w.Key("checkpoint_refused").String(c.load.checkpoint_refused);
    w.EndObject();
    w.Key("checkpoint").BeginObject();
    w.Key("enabled").Bool(c.enabled).Key("interval_seconds").Int(c.interval_seconds);
    w.Key("after_events").Int(c.after_events).Key("written").Uint(c.written).Key("failures").Uint(c.failures);
    if (!c.last_error.empty()) w.Key("last_error").String(c.last_error);
    w.Key("events_since").Uint(c.events_since);
    w.Key("last");
    if (c.last) {
      w.BeginObject().Key("offset").Uint(c.last->offset).Key("events").Uint(c.last->events);
      w.Key("created_ms").Int(c.last->created_ms).Key("bytes").Uint(c.last->bytes);
      w.Key("seconds").Double(c.last->seconds).Key("ingest_held_seconds").Double(c.last->locked_seconds);
      w.Key("written_by_this_server").Bool(c.last_written_here).EndObject();
    } else {
      w.Null();
    }
    w.EndObject();
    w.EndObject();
  }
  w.Key("store").BeginObject();
  w.Key("disk_bytes").Uint(r.store.disk_bytes).Key("audit_disk_bytes").Uint(r.store.audit_disk_bytes);
  w.Key("memtable_bytes").Uint(r.store.memtable_bytes);
  w.Key("pending_compaction_bytes").Uint(r.store.pending_compaction_bytes);
  w.Key("running_compactions").Uint(r.store.running_compactions);
  w.EndObject();
  w.EndObject();
  return {200, w.Release()};
}

HttpResponse ApiRoutes::Audit(const std::string& id) {
  if (id.empty()) return Error(404, "not_found", "give a request_id: /admin/audit/{request_id}");
  if (auto bad = BadId(id, "request_id (in the path)")) return *bad;
  auto rec = d_.status->AuditRecord(id);
  if (!rec.ok()) return FromStatus(rec.status());
  if (!rec->has_value()) return Error(404, "not_found", "no audit record for request_id '" + id + "'");
  return {200, **std::move(rec)};
}

HttpResponse ApiRoutes::Experiments(const HttpRequest& req, std::string* route) {
  const std::string prefix = "/admin/experiments";
  const std::string rest = req.path.size() > prefix.size() ? req.path.substr(prefix.size() + 1) : "";
  auto allow = [&](const char* method) {
    HttpResponse r = Error(405, "method_not_allowed", "use " + std::string(method) + " for " + req.path);
    r.headers.emplace_back("Allow", method);
    return r;
  };
  if (!d_.experiments) return Error(404, "not_found", "experiments are not available on this server");
  ExperimentService& x = *d_.experiments;
  if (rest.empty()) {
    *route = "experiments";
    if (req.method == "GET") return {200, x.ListJson()};
    if (req.method != "POST") {
      HttpResponse r = Error(405, "method_not_allowed", "use GET or POST for " + req.path);
      r.headers.emplace_back("Allow", "GET, POST");
      return r;
    }
    if (RequestError e = CheckJsonObject(req.body); !e.ok()) return Error(e.status, e.code, e.message);
    auto created = x.Create(req.body);
    if (!created.ok()) return FromStatus(created.status());
    return {201, *created};
  }
  const size_t slash = rest.find('/');
  const std::string id = UrlDecode(rest.substr(0, slash));
  const std::string action = slash == std::string::npos ? "" : rest.substr(slash + 1);
  if (action.empty()) {
    *route = "experiment";
    if (req.method != "GET") return allow("GET");
    auto j = x.GetJson(id);
    return j.ok() ? HttpResponse{200, *j} : FromStatus(j.status());
  }
  if (action == "report") {
    *route = "experiment_report";
    if (req.method != "GET") return allow("GET");
    auto j = x.ReportJson(id);
    return j.ok() ? HttpResponse{200, *j} : FromStatus(j.status());
  }
  if (action == "stop") {
    *route = "experiment_stop";
    if (req.method != "POST") return allow("POST");
    std::string reason = "stopped by an operator";
    if (RequestError e = ParseStopRequest(req.body, &reason); !e.ok()) return Error(e.status, e.code, e.message);
    if (auto s = x.Stop(id, reason); !s.ok()) return FromStatus(s);
    auto j = x.GetJson(id);
    return j.ok() ? HttpResponse{200, *j} : FromStatus(j.status());
  }
  *route = "experiments";
  return Error(404, "not_found", "no route for " + req.method + " " + req.path);
}

}  // namespace affinity
