// The route table and the component contract, without a server: patterns,
// 405s, the whole table with each route's scope, and a component that joins
// /admin/stats, /readyz, /metrics and the routes by its registration alone.
#include <gtest/gtest.h>

#include "api/metrics.h"
#include "api/route_table.h"
#include "api/routes.h"
#include "base/component.h"
#include "base/config.h"
#include "config/config.h"

namespace affinity {
namespace {

TEST(RouteTableTest, PatternsMatchWholeSegmentsAndTheRestUpToTheLiteralsAfterIt) {
  PathArgs a;
  EXPECT_TRUE(MatchPattern("/admin/stats", "/admin/stats", &a));
  EXPECT_FALSE(MatchPattern("/admin/stats", "/admin/stats/x", &a));
  EXPECT_FALSE(MatchPattern("/admin/stats", "/admin/stat", &a));
  ASSERT_TRUE(MatchPattern("/admin/experiments/{id}/report", "/admin/experiments/e%201/report", &a));
  EXPECT_EQ(a.at("id"), "e 1");
  EXPECT_FALSE(MatchPattern("/admin/experiments/{id}", "/admin/experiments/", &a));  // a parameter is never empty
  EXPECT_FALSE(MatchPattern("/admin/experiments/{id}", "/admin/experiments/a/b", &a));
  ASSERT_TRUE(MatchPattern("/affinity/entities/{id*}/similar", "/affinity/entities/a/b/similar", &a));
  EXPECT_EQ(a.at("id"), "a/b");
  EXPECT_FALSE(MatchPattern("/affinity/entities/{id*}/similar", "/affinity/entities/similar", &a));
  ASSERT_TRUE(MatchPattern("/affinity/entities/{id*}", "/affinity/entities/x%2Fsimilar", &a));
  EXPECT_EQ(a.at("id"), "x/similar");
  ASSERT_TRUE(MatchPattern("/affinity/viewers/{viewer_id*}/events", "/affinity/viewers/u1/events", &a));
  EXPECT_EQ(a.at("viewer_id"), "u1");
  EXPECT_FALSE(MatchPattern("/affinity/viewers/{viewer_id*}/events", "/affinity/viewers//events", &a));
}

TEST(RouteTableTest, TheFirstMatchingPatternDecidesAndOtherMethodsAreNamedForA405) {
  RouteTable t;
  auto ok = [](const HttpRequest&, const PathArgs&) { return HttpResponse{200, "{}"}; };
  ASSERT_TRUE(t.Add({"GET", "/e/{id*}/similar", "similar", Scope::kQuery, false, ok}).ok());
  ASSERT_TRUE(t.Add({"GET", "/e/{id*}", "entity", Scope::kQuery, false, ok}).ok());
  ASSERT_TRUE(t.Add({"PATCH", "/e/{id*}", "entity", Scope::kFeedback, true, ok}).ok());
  EXPECT_FALSE(t.Add({"GET", "/e/{id*}", "again", Scope::kQuery, false, ok}).ok());
  EXPECT_FALSE(t.Add({"GET", "/x/{a*}/{b*}", "two rests", Scope::kQuery, false, ok}).ok());
  EXPECT_FALSE(t.Add({"GET", "/x/a{b}", "half a parameter", Scope::kQuery, false, ok}).ok());
  RouteTable::Match m = t.Find("POST", "/e/i1/similar");
  EXPECT_EQ(m.entry, nullptr);
  EXPECT_EQ(m.name, "similar");
  EXPECT_EQ(m.allow, "GET");
  m = t.Find("DELETE", "/e/i1");
  EXPECT_EQ(m.entry, nullptr);
  EXPECT_EQ(m.allow, "GET, PATCH");
  m = t.Find("PATCH", "/e/i1");
  ASSERT_NE(m.entry, nullptr);
  EXPECT_TRUE(m.entry->writes);
  EXPECT_EQ(m.args.at("id"), "i1");
  EXPECT_TRUE(t.Find("GET", "/nowhere").name.empty());
}

// A component as a new operational part would be: no HTTP or Prometheus type.
class Sprinkler : public Component {
 public:
  std::string_view name() const override { return "sprinkler"; }
  void WriteStats(JsonWriter& w) const override { w.Key("sprinkler").BeginObject().Key("litres").Uint(7).EndObject(); }
  void WriteReady(JsonWriter& w) const override { w.Key("sprinkler_on").Bool(true); }
  void ReportMetrics(MetricsSink& sink) const override {
    sink.Gauge("affinity_sprinkler_litres", "Water so far", {{"garden", "front"}}, 7);
  }
  void ReportHealth(Health& health) const override { health.degraded.push_back("sprinkler"); }
  std::vector<AdminRoute> Routes() override {
    AdminRoute r{"POST", "/admin/sprinkler/{zone}", "sprinkler"};
    r.writes = true;
    r.params = {"minutes"};
    r.handle = [](const AdminRequest& req) -> absl::StatusOr<AdminReply> {
      if (req.args.at("zone") == "lawn") return absl::NotFoundError("no lawn here");
      if (req.args.at("zone") == "field") return absl::OutOfRangeError("minutes beyond the timer's dial");
      if (req.args.at("zone") == "well") return absl::DataLossError("the well's log is damaged");
      auto m = req.params.find("minutes");
      return AdminReply{200, "{\"zone\":\"" + req.args.at("zone") + "\",\"minutes\":\"" +
                                 (m == req.params.end() ? "" : m->second) + "\"}"};
    };
    return {std::move(r)};
  }
};

class ApiSurfaceTest : public ::testing::Test {
 protected:
  HttpResponse Call(const std::string& method, const std::string& path, const std::string& query = "",
                    const std::string& body = "") {
    HttpRequest req;
    req.method = method;
    req.path = path;
    req.query = query;
    req.body = body;
    return routes_.Handle(req);
  }
  Config config_;
  Metrics metrics_;
  Sprinkler sprinkler_;
  bool writable_ = true;
  ApiRoutes routes_{ApiDeps{&config_.server, nullptr, nullptr, nullptr, &metrics_, nullptr, {&sprinkler_}, [this] {
                              return writable_ ? absl::OkStatus() : absl::ResourceExhaustedError("full");
                            }}};
};

TEST_F(ApiSurfaceTest, EveryRouteIsInTheTableWithTheScopeACallerNeeds) {
  std::vector<std::string> listed;
  for (const RouteEntry& e : routes_.routes().entries())
    listed.push_back(e.method + " " + e.pattern + " " + e.name + " " + std::string(ScopeName(e.scope)) +
                     (e.writes ? " writes" : ""));
  const std::vector<std::string> expected = {
      "GET /healthz healthz public",
      "GET /readyz readyz public",
      "POST /affinity/query query query",
      "POST /affinity/feedback feedback feedback writes",
      "GET /affinity/entities entities query",
      "POST /affinity/entities entities feedback writes",
      "GET /affinity/entities/{id*}/similar entity_similar query",
      "GET /affinity/entities/{id*} entity query",
      "PATCH /affinity/entities/{id*} entity feedback writes",
      "DELETE /affinity/entities/{id*} entity feedback writes",
      "GET /affinity/viewers/{viewer_id*}/events viewer_events admin",
      "GET /metrics metrics admin",
      "GET /admin/stats stats admin",
      "GET /admin/ui ui admin",
      "GET /admin/ui/ ui admin",
      "POST /admin/sprinkler/{zone} sprinkler admin writes",
  };
  EXPECT_EQ(listed, expected);
}

TEST_F(ApiSurfaceTest, AComponentJoinsStatsReadinessMetricsAndRoutesByRegistrationAlone) {
  routes_.SetReady(true);
  HttpResponse stats = Call("GET", "/admin/stats");
  EXPECT_EQ(stats.status, 200);
  EXPECT_NE(stats.body.find("\"sprinkler\":{\"litres\":7}"), std::string::npos) << stats.body;
  HttpResponse ready = Call("GET", "/readyz");
  EXPECT_NE(ready.body.find("\"degraded\":[\"sprinkler\"]"), std::string::npos) << ready.body;
  EXPECT_NE(ready.body.find("\"sprinkler_on\":true"), std::string::npos) << ready.body;
  HttpResponse metrics = Call("GET", "/metrics");
  EXPECT_NE(metrics.body.find("# HELP affinity_sprinkler_litres Water so far"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("affinity_sprinkler_litres{garden=\"front\"} 7"), std::string::npos) << metrics.body;
  HttpResponse watered = Call("POST", "/admin/sprinkler/roses", "minutes=5");
  EXPECT_EQ(watered.status, 200);
  EXPECT_EQ(watered.body, R"({"zone":"roses","minutes":"5"})");
  EXPECT_EQ(Call("POST", "/admin/sprinkler/roses", "litres=5").status, 422);  // a parameter it does not take
  EXPECT_EQ(Call("POST", "/admin/sprinkler/lawn").status, 404);               // its error, mapped as every route's
  HttpResponse get = Call("GET", "/admin/sprinkler/roses");
  EXPECT_EQ(get.status, 405);
  ASSERT_EQ(get.headers.size(), 1u);
  EXPECT_EQ(get.headers[0], std::make_pair(std::string("Allow"), std::string("POST")));
  writable_ = false;  // a write route meets the storage guard first
  EXPECT_EQ(Call("POST", "/admin/sprinkler/roses").status, 429);
}

TEST_F(ApiSurfaceTest, AComponentsErrorIsA500OnlyWhenItIsAFaultOfTheServer) {
  EXPECT_EQ(Call("POST", "/admin/sprinkler/field").status, 422);  // out of range: the caller's
  HttpResponse fault = Call("POST", "/admin/sprinkler/well");     // damaged data: the server's own
  EXPECT_EQ(fault.status, 500);
  EXPECT_EQ(fault.body, R"({"error":{"code":"internal","message":"the well's log is damaged"}})");
}

TEST_F(ApiSurfaceTest, BodiesTooDeepNotUtf8OutOfRangeOrWithAHugeContextAreRefusedWithA4xxNamingWhy) {
  auto refusal = [&](const std::string& path, const std::string& body) {
    HttpResponse r = Call("POST", path, "", body);
    return std::to_string(r.status) + " " + r.body;
  };
  EXPECT_EQ(refusal("/affinity/query", R"({"viewer_id":"u1","context":{"a":)" + std::string(64, '[') +
                                           std::string(64, ']') + "}}"),
            R"x(400 {"error":{"code":"too_deep","message":"request body nests arrays and objects deeper than 32 levels"}})x");
  EXPECT_EQ(refusal("/affinity/feedback", "{\"events\":[{\"viewer_id\":\"\xFF\"}]}"),
            R"x(400 {"error":{"code":"invalid_utf8","message":"request body is not valid UTF-8 (from byte 25)"}})x");
  EXPECT_EQ(refusal("/affinity/entities", R"({"entities":[{"id":"i1","kind":"item"}],"entities":[]})"),
            R"x(422 {"error":{"code":"invalid","message":"key 'entities' is given twice"}})x");
  EXPECT_EQ(refusal("/affinity/query", R"({"viewer_id":"u1","k":1e999})"),
            R"x(422 {"error":{"code":"invalid","message":"k: 1e999 is out of range (a number here must fit in a double)"}})x");
  EXPECT_EQ(refusal("/affinity/query", R"({"viewer_id":"u1","context":{"s":")" + std::string(5000, 'x') + "\"}}")
                .rfind(R"x(413 {"error":{"code":"payload_too_large","message":"context is 5008 bytes; at most 4096)x", 0),
            0u);
}

}  // namespace
}  // namespace affinity
