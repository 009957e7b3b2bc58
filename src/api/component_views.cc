// What the server says about itself, built by asking each component in turn
// (base/component.h): /readyz, /admin/stats, /metrics, the components' admin
// routes, and the operator page that reads them.
#include <spdlog/spdlog.h>

#include <string>

#include "api/route_util.h"
#include "api/routes.h"
#include "api/ui_page.h"
#include "base/json_writer.h"

namespace affinity {
namespace {

void WriteRefused(const std::vector<RefusedFile>& refused, JsonWriter& w) {
  w.Key("refused").BeginArray();
  for (const RefusedFile& r : refused) {
    w.BeginObject().Key("kind").String(kRefusedKindNames.Name(r.kind)).Key("version").String(r.version).Key("reason").String(r.reason);
    w.Key("serving").String(r.serving).Key("since_ms").Int(r.since_ms).EndObject();
  }
  w.EndArray();
}

// A component's admin route as a table entry: its query parameters checked
// (when it names any), its answer or error as every route gives one.
RouteEntry AsEntry(AdminRoute route) {
  RouteEntry e{route.method, route.pattern, route.name, route.scope, route.writes, nullptr};
  e.handle = [route = std::move(route)](const HttpRequest& req, const PathArgs& args) -> HttpResponse {
    AdminRequest call{req.method, req.path, args, {}, req.body};
    if (!route.params.empty())
      if (auto bad = QueryParams(req.query, route.params, &call.params)) return *bad;
    absl::StatusOr<AdminReply> reply = route.handle(call);
    if (!reply.ok()) return FromStatus(reply.status());
    return HttpResponse{reply->status, std::move(reply->body), std::move(reply->content_type)};
  };
  return e;
}

}  // namespace

void ApiRoutes::AddComponentRoutes() {
  for (Component* c : d_.components)
    for (AdminRoute& route : c->Routes()) {
      if (absl::Status added = table_.Add(AsEntry(std::move(route))); !added.ok())
        spdlog::error("route of component {} not added: {}", c->name(), std::string(added.message()));
    }
}

Health ApiRoutes::CurrentHealth() const {
  Health h;
  for (const Component* c : d_.components) c->ReportHealth(h);
  return h;
}

HttpResponse ApiRoutes::Ready() {
  if (!ready_) return ErrorResponse(503, "not_ready", "loading state");
  const Health h = CurrentHealth();
  JsonWriter w;
  // Still ready for queries when a part is degraded: it says which.
  w.BeginObject().Key("status").String("ready");
  w.Key("degraded").BeginArray();
  for (const std::string& d : h.degraded) w.String(d);
  w.EndArray();
  WriteRefused(h.refused, w);
  for (const Component* c : d_.components) c->WriteReady(w);
  w.EndObject();
  return {200, w.Release()};
}

HttpResponse ApiRoutes::Stats() {
  JsonWriter w;
  w.BeginObject();
  WriteRefused(CurrentHealth().refused, w);
  for (const Component* c : d_.components) c->WriteStats(w);
  w.EndObject();
  return {200, w.Release()};
}

void ApiRoutes::ReportLimits() {
  static constexpr std::string_view kInFlightHelp =
      "Requests being handled (field: now; max = server.max_in_flight; overloaded = answered 503 at it since start; "
      "health routes aside)";
  MetricsSink& sink = *d_.metrics;
  sink.Gauge("affinity_http_in_flight", kInFlightHelp, {{"field", "now"}}, double(in_flight_.load()));
  sink.Gauge("affinity_http_in_flight", kInFlightHelp, {{"field", "max"}}, double(max_in_flight_));
  sink.Gauge("affinity_http_in_flight", kInFlightHelp, {{"field", "overloaded"}}, double(overloaded_.load()));
  if (!rates_) return;
  static constexpr std::string_view kRateHelp =
      "Each API key's rate, by the key's name (field: rate_per_s, burst; 0 = unlimited; allowed = requests that "
      "took a token, limited = answered 429, both since start)";
  for (const KeyRateStats& k : rates_->Stats()) {
    auto set = [&](const char* field, double v) { sink.Gauge("affinity_api_key_rate", kRateHelp, {{"key", k.name}, {"field", field}}, v); };
    set("rate_per_s", k.rate_per_s);
    set("burst", k.burst);
    set("allowed", double(k.allowed));
    set("limited", double(k.limited));
  }
}

HttpResponse ApiRoutes::MetricsText() {
  for (const Component* c : d_.components) c->ReportMetrics(*d_.metrics);
  ReportLimits();
  return {200, d_.metrics->Render(), "text/plain; version=0.0.4"};
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

}  // namespace affinity
