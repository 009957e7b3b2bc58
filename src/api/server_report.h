// The HTTP server as a component of its process (base/component.h): the
// descriptor budget and the connections in /admin/stats ("descriptors",
// "connections") and affinity_http_connections in /metrics. The server itself
// starts before the state loads and stops first, outside the components' order.
// Thread safety: safe for concurrent use.
#pragma once

#include "api/http_server.h"
#include "base/component.h"

namespace affinity {

class ServerReport : public Component {
 public:
  explicit ServerReport(const HttpServer* server) : server_(server) {}
  std::string_view name() const override { return "connections"; }
  void WriteStats(JsonWriter& w) const override;
  void ReportMetrics(MetricsSink& sink) const override;

 private:
  const HttpServer* server_;
};

}  // namespace affinity
