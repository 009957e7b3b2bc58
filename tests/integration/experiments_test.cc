// Experiments end to end: a real server on an ephemeral port, real HTTP.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "integration/server_fixture.h"

namespace affinity {
namespace {

using ExperimentsTest = ServerTest;

const char* kExp = R"({"id":"exp1","arms":[{"name":"control","weight":50},{"name":"treatment","weight":50}]})";

std::string ArmOf(simdjson::dom::element response) {
  std::string_view arm;
  if (response["experiment"]["arm"].get(arm)) return "";
  return std::string(arm);
}

TEST_F(ExperimentsTest, BadDefinitionsGetTheirStatusNamingTheField) {
  auto r = Post(port(), "/admin/experiments", kExp);
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(Post(port(), "/admin/experiments", kExp).status, 409);  // the id exists
  auto dup = Post(port(), "/admin/experiments",
                  R"({"id":"e2","arms":[{"name":"a","weight":1},{"name":"a","weight":1}]})");
  EXPECT_EQ(dup.status, 422);
  EXPECT_NE(dup.body.find("arms[1].name"), std::string::npos) << dup.body;
  auto weight = Post(port(), "/admin/experiments",
                     R"({"id":"e2","arms":[{"name":"a","weight":1},{"name":"b","weight":0}]})");
  EXPECT_EQ(weight.status, 422);
  EXPECT_NE(weight.body.find("arms[1].weight"), std::string::npos) << weight.body;
  auto model = Post(port(), "/admin/experiments",
                    R"({"id":"e2","arms":[{"name":"a","weight":1},{"name":"b","weight":1,"model_version":"m999999"}]})");
  EXPECT_EQ(model.status, 422);
  EXPECT_NE(model.body.find("m999999"), std::string::npos) << model.body;
  auto key = Post(port(), "/admin/experiments",
                  R"({"id":"e2","arms":[{"name":"a","weight":1},{"name":"b","weight":1,"overrides":{"serving.diversty":0.2}}]})");
  EXPECT_EQ(key.status, 422);
  EXPECT_NE(key.body.find("serving.diversity"), std::string::npos) << key.body;  // the nearest known setting
  auto value = Post(port(), "/admin/experiments",
                    R"({"id":"e2","arms":[{"name":"a","weight":1},{"name":"b","weight":1,"overrides":{"serving.diversity":3}}]})");
  EXPECT_EQ(value.status, 422);
  EXPECT_NE(value.body.find("serving.diversity"), std::string::npos) << value.body;
  EXPECT_EQ(Post(port(), "/admin/experiments", "{not json").status, 400);
  EXPECT_EQ(Get(port(), "/admin/experiments/nope/report").status, 404);
  EXPECT_EQ(Post(port(), "/admin/experiments/nope/stop", "").status, 404);
  // Layers: two experiments of 60 % do not fit in one.
  ASSERT_EQ(Post(port(), "/admin/experiments",
                 R"({"id":"l1","layer":"L","traffic":60,"arms":[{"name":"a","weight":1},{"name":"b","weight":1}]})")
                .status,
            201);
  auto full = Post(port(), "/admin/experiments",
                   R"({"id":"l2","layer":"L","traffic":60,"arms":[{"name":"a","weight":1},{"name":"b","weight":1}]})");
  EXPECT_EQ(full.status, 422);
  EXPECT_NE(full.body.find("traffic"), std::string::npos) << full.body;
  auto list = Json(Get(port(), "/admin/experiments").body);
  EXPECT_EQ(list["experiments"].get_array().size(), 2u);
}

TEST_F(ExperimentsTest, ResponsesNameTheArmAndClicksOnTheirResultsCountThere) {
  ASSERT_EQ(Post(port(), "/admin/experiments", kExp).status, 201);
  std::map<std::string, std::string> arm_of;
  std::map<std::string, int> clicks_sent;
  for (int u = 0; u < 60; ++u) {
    const std::string viewer = "u" + std::to_string(u);
    auto r = Post(port(), "/affinity/query", R"({"viewer_id":")" + viewer + R"(","k":5})");
    ASSERT_EQ(r.status, 200) << r.body;
    auto j = Json(r.body);
    const std::string arm = ArmOf(j);
    ASSERT_TRUE(arm == "control" || arm == "treatment") << r.body;
    EXPECT_EQ(std::string_view(j["experiment"]["id"]), "exp1");
    arm_of[viewer] = arm;
    // The same viewer again: the same arm.
    EXPECT_EQ(ArmOf(Json(Post(port(), "/affinity/query", R"({"viewer_id":")" + viewer + R"(","k":5})").body)), arm);
    // Click the first result of every third viewer's response, twice (counted once).
    auto results = j["results"].get_array();
    if (u % 3 != 0 || results.size() == 0) continue;
    const std::string request_id{std::string_view(j["request_id"])};
    const std::string entity{std::string_view(results.at(0)["entity_id"])};
    const std::string ev = R"({"viewer_id":")" + viewer + R"(","entity_id":")" + entity +
                           R"(","action":"click","context":{"request_id":")" + request_id + R"("}})";
    ASSERT_EQ(Post(port(), "/affinity/feedback", "{\"events\":[" + ev + "," + ev + "]}").status, 202);
    clicks_sent[arm]++;
    // The audit record names the experiment too.
    auto audit = Json(Get(port(), "/admin/audit/" + request_id).body);
    EXPECT_EQ(ArmOf(audit["response"]), arm);
  }
  // Feedback naming an unknown request is accepted, and attributed nowhere.
  ASSERT_EQ(Post(port(), "/affinity/feedback",
                 R"({"events":[{"viewer_id":"u1","entity_id":"i1","action":"click","context":{"request_id":"q_nope"}}]})")
                .status,
            202);
  auto report = Json(Get(port(), "/admin/experiments/exp1/report").body);
  int64_t viewers = 0, responses = 0, exposures = 0;
  for (auto a : report["arms"].get_array()) {
    const std::string name{std::string_view(a["name"])};
    EXPECT_EQ(int64_t(a["clicks"]), clicks_sent[name]) << name;
    viewers += int64_t(a["viewers"]), responses += int64_t(a["responses"]), exposures += int64_t(a["exposures"]);
    EXPECT_NEAR(double(a["ctr"]), double(int64_t(a["clicks"])) / double(int64_t(a["exposures"])), 1e-6);
    EXPECT_FALSE(a["latency_ms"]["p99"].error());
    EXPECT_FALSE(a["ctr_ci"].error());
  }
  EXPECT_EQ(viewers, 60);
  EXPECT_EQ(responses, 120);
  EXPECT_EQ(exposures, 120 * 5);
  EXPECT_GT(double(report["srm_p_value"]), 0.0);
  auto comparisons = report["comparisons"].get_array();
  ASSERT_EQ(comparisons.size(), 2u);  // ctr and hide_rate of the treatment
  EXPECT_EQ(std::string_view(comparisons.at(0)["metric"]), "ctr");
  EXPECT_FALSE(comparisons.at(0)["always_valid_p_value"].error());
  EXPECT_FALSE(comparisons.at(0)["p_value"].error());
  // Prometheus series per arm.
  const std::string metrics = Get(port(), "/metrics").body;
  EXPECT_NE(metrics.find("affinity_experiment_responses{arm=\"control\",experiment=\"exp1\"}"), std::string::npos);
}

// A QA override (X-Affinity-Force-Arm) serves one request in the named arm,
// says so in the response and the audit record, and is counted nowhere:
// neither the response nor a click on its results reaches the report.
TEST_F(ExperimentsTest, AForcedArmServesOneRequestAndIsLeftOutOfTheReport) {
  ASSERT_EQ(Post(port(), "/admin/experiments", kExp).status, 201);
  const std::vector<std::pair<std::string, std::string>> force = {{"X-Affinity-Force-Arm", "exp1=treatment"}};
  const std::string query = R"({"viewer_id":"u3","k":5})";
  // Whatever arm u3's hash gives, every forced request is in the treatment.
  for (int i = 0; i < 3; ++i) {
    auto r = HttpCall(port(), "POST", "/affinity/query", query, force);
    ASSERT_EQ(r.status, 200) << r.body;
    auto j = Json(r.body);
    EXPECT_EQ(ArmOf(j), "treatment");
    bool forced = false;
    EXPECT_FALSE(j["experiment"]["forced"].get(forced)) << r.body;
    EXPECT_TRUE(forced) << r.body;
    const std::string request_id{std::string_view(j["request_id"])};
    const std::string entity{std::string_view(j["results"].at(0)["entity_id"])};  // before the parser is reused
    const std::string audit_body = Get(port(), "/admin/audit/" + request_id).body;
    forced = false;
    EXPECT_FALSE(Json(audit_body)["response"]["experiment"]["forced"].get(forced)) << audit_body;
    EXPECT_TRUE(forced) << audit_body;
    ASSERT_EQ(Post(port(), "/affinity/feedback", R"({"events":[{"viewer_id":"u3","entity_id":")" + entity +
                                                     R"(","action":"click","context":{"request_id":")" + request_id +
                                                     R"("}}]})")
                  .status,
              202);
  }
  auto report = Json(Get(port(), "/admin/experiments/exp1/report").body);
  for (auto a : report["arms"].get_array()) {
    EXPECT_EQ(int64_t(a["responses"]), 0) << std::string_view(a["name"]);
    EXPECT_EQ(int64_t(a["clicks"]), 0) << std::string_view(a["name"]);
  }
  // Without the header the viewer gets its own arm, not marked forced, and counted.
  auto j = Json(Post(port(), "/affinity/query", query).body);
  EXPECT_TRUE(j["experiment"]["forced"].error());
  // Bad overrides are refused naming the header and what is wrong.
  for (const auto& [value, says] : std::vector<std::pair<std::string, std::string>>{
           {"nope=treatment", "no experiment 'nope'"}, {"exp1=bogus", "has no arm 'bogus'"}, {"exp1", "experiment=arm"}}) {
    auto r = HttpCall(port(), "POST", "/affinity/query", query, {{"X-Affinity-Force-Arm", value}});
    EXPECT_EQ(r.status, 422) << value;
    EXPECT_EQ(ErrorCode(r.body), "invalid_header");
    EXPECT_NE(r.body.find("X-Affinity-Force-Arm"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find(says), std::string::npos) << r.body;
  }
  report = Json(Get(port(), "/admin/experiments/exp1/report").body);
  int64_t responses = 0;
  for (auto a : report["arms"].get_array()) responses += int64_t(a["responses"]);
  EXPECT_EQ(responses, 1);
}

TEST_F(ExperimentsTest, ExperimentsAssignmentsAndCountsSurviveKill9) {
  ASSERT_EQ(Post(port(), "/admin/experiments", kExp).status, 201);
  std::map<std::string, std::string> arm_of;
  for (int u = 0; u < 30; ++u) {
    const std::string viewer = "u" + std::to_string(u);
    auto j = Json(Post(port(), "/affinity/query", R"({"viewer_id":")" + viewer + R"(","k":3})").body);
    arm_of[viewer] = ArmOf(j);
    if (u == 4) {
      const std::string ev = R"({"events":[{"viewer_id":"u4","entity_id":")" +
                             std::string(std::string_view(j["results"].at(0)["entity_id"])) +
                             R"(","action":"hide","context":{"request_id":")" +
                             std::string(std::string_view(j["request_id"])) + R"("}}]})";
      ASSERT_EQ(Post(port(), "/affinity/feedback", ev).status, 202);
    }
  }
  const std::string before = Get(port(), "/admin/experiments/exp1/report").body;
  server_->Kill9();
  server_ = std::make_unique<ServerProcess>(dir_ / "data");
  ASSERT_TRUE(server_->running()) << server_->log();
  auto a = Json(before), b = Json(Get(port(), "/admin/experiments/exp1/report").body);
  int64_t hides = 0;
  for (size_t i = 0; i < 2; ++i) {
    auto x = a["arms"].get_array().at(i), y = b["arms"].get_array().at(i);
    for (const char* k : {"viewers", "responses", "exposures", "clicks", "hides"})
      EXPECT_EQ(int64_t(x[k]), int64_t(y[k])) << k;
    hides += int64_t(y["hides"]);
  }
  EXPECT_EQ(hides, 1);
  for (const auto& [viewer, arm] : arm_of)
    EXPECT_EQ(ArmOf(Json(Post(port(), "/affinity/query", R"({"viewer_id":")" + viewer + R"(","k":3})").body)), arm);
}

TEST_F(ExperimentsTest, AStoppedExperimentStopsAssigningAndKeepsItsReport) {
  ASSERT_EQ(Post(port(), "/admin/experiments", kExp).status, 201);
  ASSERT_EQ(Post(port(), "/affinity/query", R"({"viewer_id":"u1","k":3})").status, 200);
  auto stop = Post(port(), "/admin/experiments/exp1/stop", R"({"reason":"enough"})");
  ASSERT_EQ(stop.status, 200) << stop.body;
  EXPECT_EQ(std::string_view(Json(stop.body)["status"]), "stopped");
  auto j = Json(Post(port(), "/affinity/query", R"({"viewer_id":"u1","k":3})").body);
  EXPECT_TRUE(j["experiment"].is_null());
  auto report = Json(Get(port(), "/admin/experiments/exp1/report").body);
  EXPECT_EQ(std::string_view(report["status"]), "stopped");
  int64_t responses = 0;
  for (auto a : report["arms"].get_array()) responses += int64_t(a["responses"]);
  EXPECT_EQ(responses, 1);
}

TEST_F(ExperimentsTest, AnArmsOverridesAndRankerChangeHowItServes) {
  // Every viewer in the treatment: at most one item per creator, ranked by the blend.
  ASSERT_EQ(Post(port(), "/admin/experiments",
                 R"({"id":"cap","arms":[{"name":"control","weight":1e-9},
                     {"name":"one_per_creator","weight":1,"ranker":"off","overrides":{"serving.per_creator_cap":1}}]})")
                .status,
            201);
  for (int u = 0; u < 10; ++u) {
    const std::string viewer = "u" + std::to_string(u);
    const std::string body = Post(port(), "/affinity/query", R"({"viewer_id":")" + viewer + R"(","k":20})").body;
    ASSERT_EQ(ArmOf(Json(body)), "one_per_creator") << body;
    std::set<std::string> creators;
    size_t n = 0;
    for (const std::string& id : Ids(body)) {
      auto e = Json(Get(port(), "/affinity/entities/" + id).body);
      std::string_view creator;
      if (!e["creator_id"].get(creator)) creators.insert(std::string(creator)), ++n;
    }
    EXPECT_EQ(creators.size(), n) << viewer << ": the arm's per_creator_cap of 1 applies";
  }
}

TEST_F(ExperimentsTest, TheCommandLineCreatesListsReportsAndStopsThroughTheServer) {
  const std::string url = "http://127.0.0.1:" + std::to_string(port());
  const std::string file = dir_ / "exp.json";
  { std::ofstream(file) << kExp; }
  auto created = RunAffinity({"experiment", "create", file, "--url", url});
  ASSERT_EQ(created.exit_code, 0) << created.output;
  EXPECT_NE(created.output.find("\"id\":\"exp1\""), std::string::npos) << created.output;
  auto again = RunAffinity({"experiment", "create", file, "--url", url});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.output.find("409"), std::string::npos) << again.output;
  ASSERT_EQ(Post(port(), "/affinity/query", R"({"viewer_id":"u3","k":3})").status, 200);
  auto list = RunAffinity({"experiment", "list", "--url", url});
  EXPECT_EQ(list.exit_code, 0) << list.output;
  EXPECT_NE(list.output.find("exp1"), std::string::npos);
  auto report = RunAffinity({"experiment", "report", "exp1", "--url", url});
  EXPECT_EQ(report.exit_code, 0) << report.output;
  EXPECT_NE(report.output.find("srm_p_value"), std::string::npos) << report.output;
  auto stop = RunAffinity({"experiment", "stop", "exp1", "--reason", "done", "--url", url});
  EXPECT_EQ(stop.exit_code, 0) << stop.output;
  EXPECT_NE(stop.output.find("\"stopped_reason\":\"done\""), std::string::npos) << stop.output;
  auto missing = RunAffinity({"experiment", "report", "nope", "--url", url});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.output.find("404"), std::string::npos) << missing.output;
  auto nobody = RunAffinity({"experiment", "list", "--url", "http://127.0.0.1:1"});
  EXPECT_NE(nobody.exit_code, 0);
  EXPECT_NE(nobody.output.find("cannot reach"), std::string::npos) << nobody.output;
}

}  // namespace
}  // namespace affinity
