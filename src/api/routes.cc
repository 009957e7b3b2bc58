#include "api/routes.h"

#include <simdjson.h>

#include <chrono>

#include "base/json_writer.h"

namespace affinity {
namespace {

HttpResponse Error(int status, std::string_view code, std::string_view message) {
  return {status, JsonError(code, message)};
}

HttpResponse FromStatus(const absl::Status& s) {
  const std::string message(s.message());  // absl's string_view is not std's in this Abseil
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument: return Error(422, "invalid", message);
    case absl::StatusCode::kNotFound: return Error(404, "not_found", message);
    case absl::StatusCode::kResourceExhausted: return Error(429, "overloaded", message);
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kFailedPrecondition: return Error(503, "unavailable", message);
    default: return Error(500, "internal", message);
  }
}

simdjson::dom::parser& Parser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

// Parses a JSON object body; on failure fills `err` with the 400 response.
bool ParseBody(const std::string& body, simdjson::dom::object* obj, HttpResponse* err) {
  simdjson::dom::element doc;
  auto e = Parser().parse(body).get(doc);
  if (e) {
    *err = Error(400, "malformed_json", std::string("request body is not valid JSON: ") + simdjson::error_message(e));
    return false;
  }
  if (doc.get(*obj)) {
    *err = Error(400, "malformed_json", "request body must be a JSON object");
    return false;
  }
  return true;
}

// Reads optional string arrays; returns an error message or "".
std::string StringArray(simdjson::dom::object& obj, const char* key, std::vector<std::string>* out) {
  simdjson::dom::element v;
  if (obj[key].get(v)) return "";
  simdjson::dom::array arr;
  if (v.get(arr)) return std::string(key) + " must be an array of strings";
  for (auto el : arr) {
    std::string_view s;
    if (el.get(s)) return std::string(key) + " must be an array of strings";
    out->emplace_back(s);
  }
  return "";
}

}  // namespace

HttpResponse ApiRoutes::Handle(const HttpRequest& req) {
  auto t0 = std::chrono::steady_clock::now();
  std::string route = "unknown";
  HttpResponse resp = Route(req, &route);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  d_.metrics->ObserveRequest(route, resp.status, secs);
  return resp;
}

HttpResponse ApiRoutes::Route(const HttpRequest& req, std::string* route) {
  const std::string& p = req.path;
  auto method_is = [&](const char* m) { return req.method == m; };
  auto wrong_method = [&](const char* allowed) {
    return Error(405, "method_not_allowed", std::string("use ") + allowed + " for " + p);
  };
  if (p == "/affinity/query") {
    *route = "query";
    return method_is("POST") ? Query(req) : wrong_method("POST");
  }
  if (p == "/affinity/feedback") {
    *route = "feedback";
    return method_is("POST") ? Feedback(req) : wrong_method("POST");
  }
  if (p == "/affinity/entities") {
    *route = "entities";
    return method_is("POST") ? Entities(req) : wrong_method("POST");
  }
  if (p == "/healthz") {
    *route = "healthz";
    return {200, "{\"status\":\"ok\"}"};
  }
  if (p == "/readyz") {
    *route = "readyz";
    if (!ready_) return Error(503, "not_ready", "loading state");
    JsonWriter w;
    auto snap = d_.snapshots->Get();
    w.BeginObject().Key("status").String("ready").Key("snapshot").String(snap ? snap->version : "").EndObject();
    return {200, w.Release()};
  }
  if (p == "/metrics") {
    *route = "metrics";
    d_.metrics->SetStoreUsage(d_.store->GetUsage());
    if (auto snap = d_.snapshots->Get()) {
      d_.metrics->SetSnapshotAge(double(d_.clock->NowMillis() - snap->created_ms) / 1000.0);
      d_.metrics->SetEventLag(double(std::max<int64_t>(0, d_.live->last_event_ts() - snap->watermark_ts)) / 1000.0);
    }
    return {200, d_.metrics->Render(), "text/plain; version=0.0.4"};
  }
  if (p == "/admin/stats") {
    *route = "stats";
    return method_is("GET") ? Stats() : wrong_method("GET");
  }
  const std::string audit_prefix = "/admin/audit/";
  if (p.rfind(audit_prefix, 0) == 0) {
    *route = "audit";
    return method_is("GET") ? Audit(p.substr(audit_prefix.size())) : wrong_method("GET");
  }
  return Error(404, "not_found", "no route for " + req.method + " " + p);
}

HttpResponse ApiRoutes::Query(const HttpRequest& req) {
  simdjson::dom::object obj;
  HttpResponse err;
  if (!ParseBody(req.body, &obj, &err)) return err;
  QueryRequest q;
  std::string_view s;
  simdjson::dom::element v;
  if (obj["viewer_id"].get(v)) return Error(422, "invalid", "viewer_id is required");
  if (v.get(s) || s.empty()) return Error(422, "invalid", "viewer_id must be a non-empty string");
  q.viewer_id = s;
  if (!obj["target"].get(v)) {
    if (v.get(s)) return Error(422, "invalid", "target must be \"users\", \"creators\" or \"items\"");
    if (s == "users") q.target = Kind::kUser;
    else if (s == "creators") q.target = Kind::kCreator;
    else if (s == "items") q.target = Kind::kItem;
    else return Error(422, "invalid", "target must be \"users\", \"creators\" or \"items\", not \"" + std::string(s) + "\"");
  }
  if (!obj["k"].get(v)) {
    int64_t k;
    if (v.get(k) || k < 1 || k > 500) return Error(422, "invalid", "k must be an integer from 1 to 500");
    q.k = int(k);
  }
  std::string m = StringArray(obj, "seeds", &q.seeds);
  if (m.empty()) m = StringArray(obj, "exclude", &q.exclude);
  if (!m.empty()) return Error(422, "invalid", m);
  if (!obj["context"].get(v)) {
    if (!v.is_object()) return Error(422, "invalid", "context must be an object");
    q.context = simdjson::minify(v);
  }
  if (!obj["explain"].get(v)) {
    bool b;
    if (!v.get(b)) q.explain = b ? ExplainMode::kTop : ExplainMode::kNone;
    else if (!v.get(s) && s == "full") q.explain = ExplainMode::kFull;
    else return Error(422, "invalid", "explain must be true, false or \"full\"");
  }
  if (!obj["deadline_ms"].get(v)) {
    int64_t d;
    if (v.get(d) || d < 1 || d > 10000) return Error(422, "invalid", "deadline_ms must be an integer from 1 to 10000");
    q.deadline_ms = int(d);
  }
  if (!obj["exclude_engaged"].get(v)) {
    bool b;
    if (v.get(b)) return Error(422, "invalid", "exclude_engaged must be true or false");
    q.exclude_engaged = b;
  }
  if (!obj["max_per_creator"].get(v)) {
    int64_t c;
    if (v.get(c) || c < 0 || c > 500) return Error(422, "invalid", "max_per_creator must be an integer from 0 to 500");
    q.max_per_creator = int(c);
  }
  if (!obj["diversity"].get(v)) {
    double d;
    if (v.get(d) || !(d >= 0 && d < 1)) return Error(422, "invalid", "diversity must be a number in [0, 1)");
    q.diversity = d;
  }
  if (!obj["new_creator_share"].get(v)) {
    double d;
    if (v.get(d) || !(d >= 0 && d <= 1)) return Error(422, "invalid", "new_creator_share must be a number in [0, 1]");
    q.new_creator_share = d;
  }
  if (!obj["ranker"].get(v)) {
    if (v.get(s) || (s != "off" && s != "learned" && s != "blend"))
      return Error(422, "invalid", "ranker must be \"learned\" or \"off\"");
    q.ranker = s == "blend" ? "off" : std::string(s);
  }
  auto r = d_.engine->Query(q);
  if (!r.ok()) return FromStatus(r.status());
  d_.metrics->ObserveQuery(*r);
  JsonWriter w;
  d_.engine->WriteJson(*r, q.explain, w);
  return {200, w.Release()};
}

HttpResponse ApiRoutes::Feedback(const HttpRequest& req) {
  simdjson::dom::object obj;
  HttpResponse err;
  if (!ParseBody(req.body, &obj, &err)) return err;
  simdjson::dom::array arr;
  if (obj["events"].get(arr)) return Error(422, "invalid", "events must be an array of event objects");
  if (arr.size() > size_t(d_.config->server.max_events_per_batch))
    return Error(413, "payload_too_large", "at most " + std::to_string(d_.config->server.max_events_per_batch) +
                                                " events per batch");
  std::vector<RawEvent> events;
  events.reserve(arr.size());
  size_t i = 0;
  for (auto el : arr) {
    auto bad = [&](const std::string& msg) {
      return Error(422, "invalid", "events[" + std::to_string(i) + "]: " + msg);
    };
    simdjson::dom::object e;
    if (el.get(e)) return bad("must be an object");
    RawEvent r;
    std::string_view s;
    simdjson::dom::element v;
    if (e["viewer_id"].get(v) || v.get(s)) return bad("viewer_id must be a string");
    r.viewer_id = s;
    if (e["entity_id"].get(v) || v.get(s)) return bad("entity_id must be a string");
    r.entity_id = s;
    if (e["action"].get(v) || v.get(s)) return bad("action must be a string");
    r.action = s;
    if (!e["weight"].get(v) && !v.is_null()) {
      double w;
      if (v.get(w)) return bad("weight must be a number");
      r.weight = w;
    }
    if (!e["ts"].get(v) && !v.is_null()) {
      int64_t ts;
      if (v.get(ts)) return bad("ts must be an integer (unix milliseconds)");
      r.ts = ts;
    }
    if (!e["context"].get(v) && !v.is_null()) {
      if (!v.is_object()) return bad("context must be an object");
      r.context = simdjson::minify(v);
    }
    events.push_back(std::move(r));
    ++i;
  }
  auto n = d_.ingestor->AddFeedback(events);
  if (!n.ok()) return FromStatus(n.status());
  d_.metrics->AddEvents(*n);
  JsonWriter w;
  w.BeginObject().Key("accepted").Uint(*n).EndObject();
  return {202, w.Release()};
}

HttpResponse ApiRoutes::Entities(const HttpRequest& req) {
  simdjson::dom::object obj;
  HttpResponse err;
  if (!ParseBody(req.body, &obj, &err)) return err;
  simdjson::dom::array arr;
  if (obj["entities"].get(arr)) return Error(422, "invalid", "entities must be an array of entity objects");
  std::vector<RawEntity> entities;
  size_t i = 0;
  for (auto el : arr) {
    auto bad = [&](const std::string& msg) {
      return Error(422, "invalid", "entities[" + std::to_string(i) + "]: " + msg);
    };
    simdjson::dom::object e;
    if (el.get(e)) return bad("must be an object");
    RawEntity r;
    std::string_view s;
    simdjson::dom::element v;
    if (e["id"].get(v) || v.get(s)) return bad("id must be a string");
    r.id = s;
    if (e["kind"].get(v) || v.get(s)) return bad("kind must be \"user\", \"creator\" or \"item\"");
    r.kind = s;
    if (!e["creator_id"].get(v) && !v.is_null()) {
      if (v.get(s)) return bad("creator_id must be a string");
      r.creator_id = s;
    }
    if (!e["attributes"].get(v) && !v.is_null()) {
      simdjson::dom::object attrs;
      if (v.get(attrs)) return bad("attributes must be an object");
      r.attributes = simdjson::minify(v);
      simdjson::dom::element c;
      if (!attrs["cohort"].get(c) && !c.get(s)) r.cohort = s;
    }
    if (!e["cohort"].get(v) && !v.get(s)) r.cohort = s;
    entities.push_back(std::move(r));
    ++i;
  }
  auto n = d_.ingestor->UpsertEntities(entities);
  if (!n.ok()) return FromStatus(n.status());
  JsonWriter w;
  w.BeginObject().Key("upserted").Uint(*n).EndObject();
  return {200, w.Release()};
}

HttpResponse ApiRoutes::Stats() {
  auto snap = d_.snapshots->Get();
  const int64_t now = d_.clock->NowMillis();
  JsonWriter w;
  w.BeginObject();
  w.Key("events").Uint(d_.store->NextOffset());
  w.Key("entities").Uint(d_.registry->Total());
  w.Key("entities_by_kind").BeginObject();
  for (int k = 0; k < kNumKinds; ++k) w.Key(KindName(Kind(k))).Uint(d_.registry->Count(Kind(k)));
  w.EndObject();
  w.Key("snapshot").String(snap ? snap->version : "");
  w.Key("snapshot_swaps").Uint(d_.snapshots->swaps());
  if (snap) {
    w.Key("snapshot_age_seconds").Double(double(now - snap->created_ms) / 1000.0);
    w.Key("snapshot_watermark_offset").Uint(snap->watermark_offset);
    w.Key("stale_feature_groups").BeginArray();
    for (const auto& g : snap->StaleGroups(now)) w.String(g);
    w.EndArray();
  }
  std::string snap_err = d_.snapshots->last_error();
  if (!snap_err.empty()) w.Key("snapshot_error").String(snap_err);
  w.Key("live_events_applied").Uint(d_.live->events_applied());
  w.Key("audit_dropped").Uint(d_.audit->dropped());
  w.Key("audit_write_errors").Uint(d_.audit->write_errors());
  const Store::Usage u = d_.store->GetUsage();
  w.Key("store").BeginObject();
  w.Key("disk_bytes").Uint(u.disk_bytes).Key("audit_disk_bytes").Uint(u.audit_disk_bytes);
  w.Key("memtable_bytes").Uint(u.memtable_bytes).Key("pending_compaction_bytes").Uint(u.pending_compaction_bytes);
  w.Key("running_compactions").Uint(u.running_compactions);
  w.EndObject();
  w.EndObject();
  return {200, w.Release()};
}

HttpResponse ApiRoutes::Audit(const std::string& id) {
  if (id.empty()) return Error(404, "not_found", "give a request_id: /admin/audit/{request_id}");
  auto rec = d_.audit->Get(id);
  if (!rec.ok()) return FromStatus(rec.status());
  if (!rec->has_value()) return Error(404, "not_found", "no audit record for request_id '" + id + "'");
  auto readable = ExpandAuditRecord(**rec);
  if (!readable.ok()) return FromStatus(readable.status());
  return {200, *std::move(readable)};
}

}  // namespace affinity
