#include "api/server_report.h"

#include "base/descriptors.h"

namespace affinity {

void ServerReport::WriteStats(JsonWriter& w) const {
  const DescriptorLimit fds = CurrentDescriptorLimit();
  w.Key("descriptors").BeginObject().Key("limit").Uint(fds.soft).Key("hard_limit").Uint(fds.hard);
  w.Key("open").Uint(OpenDescriptors()).EndObject();
  const ConnectionStats c = server_->Connections();
  w.Key("connections").BeginObject().Key("open").Uint(c.open).Key("busy").Uint(c.busy).Key("max").Uint(c.cap);
  w.Key("max_per_peer").Uint(c.cap_per_peer);
  w.Key("accepted").Uint(c.accepted).Key("refused").Uint(c.refused).Key("refused_per_peer").Uint(c.refused_per_peer);
  w.Key("evicted_idle").Uint(c.evicted);
  w.Key("header_timeouts").Uint(c.header_timeouts).Key("idle_timeouts").Uint(c.idle_timeouts);
  w.Key("accept_errors").Uint(c.accept_errors).EndObject();
}

void ServerReport::ReportMetrics(MetricsSink& sink) const {
  static constexpr std::string_view kHelp =
      "The HTTP server's connections (field: open, busy = in a request, max = the cap, "
      "max_per_peer = one address's cap (0: none), accepted, refused = answered 503 at the cap with none idle, "
      "refused_per_peer = answered 503 at an address's cap with none of its idle, evicted_idle = idle ones "
      "closed for a new one, header_timeouts, idle_timeouts, accept_errors; all but open, busy, "
      "max and max_per_peer count since start)";
  const ConnectionStats c = server_->Connections();
  auto set = [&](const char* field, double v) { sink.Gauge("affinity_http_connections", kHelp, {{"field", field}}, v); };
  set("open", double(c.open));
  set("busy", double(c.busy));
  set("max", double(c.cap));
  set("accepted", double(c.accepted));
  set("refused", double(c.refused));
  set("max_per_peer", double(c.cap_per_peer));
  set("refused_per_peer", double(c.refused_per_peer));
  set("evicted_idle", double(c.evicted));
  set("header_timeouts", double(c.header_timeouts));
  set("idle_timeouts", double(c.idle_timeouts));
  set("accept_errors", double(c.accept_errors));
  static constexpr std::string_view kTimeoutHelp =
      "The HTTP server's time limits (timeout: header = server.header_timeout_ms, idle, body), in seconds";
  const HttpServerOptions& o = server_->options();
  using Timeout = std::pair<const char*, std::chrono::milliseconds>;
  for (const auto& [name, ms] : {Timeout{"header", o.header_timeout}, Timeout{"idle", o.idle_timeout},
                                 Timeout{"body", o.body_timeout}})
    sink.Gauge("affinity_http_timeout_seconds", kTimeoutHelp, {{"timeout", name}}, double(ms.count()) / 1000);
}

}  // namespace affinity
