#include "api/server_report.h"

#include "base/descriptors.h"

namespace affinity {

void ServerReport::WriteStats(JsonWriter& w) const {
  const DescriptorLimit fds = CurrentDescriptorLimit();
  w.Key("descriptors").BeginObject().Key("limit").Uint(fds.soft).Key("hard_limit").Uint(fds.hard);
  w.Key("open").Uint(OpenDescriptors()).EndObject();
  const ConnectionStats c = server_->Connections();
  w.Key("connections").BeginObject().Key("open").Uint(c.open).Key("busy").Uint(c.busy).Key("max").Uint(c.cap);
  w.Key("accepted").Uint(c.accepted).Key("refused").Uint(c.refused).Key("evicted_idle").Uint(c.evicted);
  w.Key("header_timeouts").Uint(c.header_timeouts).Key("idle_timeouts").Uint(c.idle_timeouts);
  w.Key("accept_errors").Uint(c.accept_errors).EndObject();
}

void ServerReport::ReportMetrics(MetricsSink& sink) const {
  static constexpr std::string_view kHelp =
      "The HTTP server's connections (field: open, busy = in a request, max = the cap, "
      "accepted, refused = answered 503 at the cap with none idle, evicted_idle = idle ones "
      "closed for a new one, header_timeouts, idle_timeouts, accept_errors; all but open, busy "
      "and max count since start)";
  const ConnectionStats c = server_->Connections();
  auto set = [&](const char* field, double v) { sink.Gauge("affinity_http_connections", kHelp, {{"field", field}}, v); };
  set("open", double(c.open));
  set("busy", double(c.busy));
  set("max", double(c.cap));
  set("accepted", double(c.accepted));
  set("refused", double(c.refused));
  set("evicted_idle", double(c.evicted));
  set("header_timeouts", double(c.header_timeouts));
  set("idle_timeouts", double(c.idle_timeouts));
  set("accept_errors", double(c.accept_errors));
}

}  // namespace affinity
