// End to end: the affinity binary, a real data dir, a real server on an
// ephemeral port, real HTTP.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "ranking/learned_ranker.h"
#include "integration/server_fixture.h"

namespace affinity {
namespace {

using namespace affinity::testing;


TEST_F(ServerTest, ServesExplainedRecommendationsForEveryTarget) {
  for (const char* target : {"users", "creators", "items"}) {
    auto r = Post(port(), "/affinity/query", std::string("{\"viewer_id\":\"u3\",\"target\":\"") + target + "\",\"k\":7}");
    ASSERT_EQ(r.status, 200) << r.body;
    auto doc = Json(r.body);
    EXPECT_FALSE(std::string_view(doc["request_id"]).empty());
    EXPECT_FALSE(std::string_view(doc["model_version"]).empty());
    auto results = doc["results"].get_array();
    ASSERT_EQ(results.size(), 7u) << target;
    char prefix = target[0] == 'u' ? 'u' : target[0] == 'c' ? 'c' : 'i';
    for (auto res : results) {
      std::string_view id = res["entity_id"];
      EXPECT_EQ(id[0], prefix) << id;
      EXPECT_NE(id, "u3");
      EXPECT_GT(res["sources"].get_array().size(), 0u);
      EXPECT_FALSE(std::string_view(res["explanation"]["reason"]).empty());
      EXPECT_GT(res["explanation"]["top_features"].get_array().size(), 0u);
    }
  }
}

TEST_F(ServerTest, FullExplanationsAddUpToTheRawScore) {
  auto r = Post(port(), "/affinity/query", R"({"viewer_id":"u5","k":5,"explain":"full"})");
  ASSERT_EQ(r.status, 200) << r.body;
  for (auto res : Json(r.body)["results"].get_array()) {
    double sum = double(res["explanation"]["base"]);
    for (auto f : res["explanation"]["top_features"].get_array()) sum += double(f["contribution"]);
    EXPECT_NEAR(sum, double(res["explanation"]["raw_score"]), 1e-3);
    EXPECT_NEAR(sum, double(res["score"]), 1e-3);
  }
}

TEST_F(ServerTest, UnknownViewerGetsAColdStartList) {
  auto r = Post(port(), "/affinity/query", R"({"viewer_id":"never-seen","target":"items","k":5})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Ids(r.body).size(), 5u);
  EXPECT_TRUE(bool(Json(r.body)["cold_start"]));
}

TEST_F(ServerTest, MalformedJsonIs400) {
  auto r = Post(port(), "/affinity/query", "{\"viewer_id\":");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(ErrorCode(r.body), "malformed_json");
  EXPECT_EQ(Post(port(), "/affinity/feedback", "[1,2]").status, 400);
}

TEST_F(ServerTest, InvalidFieldsAre422WithAMessage) {
  for (const char* body : {R"({"target":"items"})", R"({"viewer_id":"u1","k":0})", R"({"viewer_id":"u1","k":501})",
                           R"({"viewer_id":"u1","target":"planets"})", R"({"viewer_id":7})",
                           R"({"viewer_id":"u1","explain":"maybe"})", R"({"viewer_id":"u1","seeds":"i1"})",
                           R"({"viewer_id":"c1"})", R"({"viewer_id":"u1","diversity":1.5})",
                           R"({"viewer_id":"u1","new_creator_share":-0.1})", R"({"viewer_id":"u1","ranker":"magic"})"}) {
    auto r = Post(port(), "/affinity/query", body);
    EXPECT_EQ(r.status, 422) << body << " -> " << r.body;
    EXPECT_FALSE(std::string_view(Json(r.body)["error"]["message"]).empty());
  }
}

TEST_F(ServerTest, OversizedBodyIs413) {
  std::string big = "{\"events\":[" + std::string(9 << 20, ' ') + "]}";
  auto r = Post(port(), "/affinity/feedback", big);
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(ErrorCode(r.body), "payload_too_large");
}

TEST_F(ServerTest, UnknownRouteIs404AndWrongMethodIs405) {
  EXPECT_EQ(Get(port(), "/nope").status, 404);
  EXPECT_EQ(Get(port(), "/affinity/query").status, 405);
  EXPECT_EQ(Get(port(), "/admin/audit/q_missing").status, 404);
}

TEST_F(ServerTest, InvalidEventRejectsTheWholeBatchAndAppliesNothing) {
  auto before = Json(Get(port(), "/admin/stats").body);
  int64_t events_before = int64_t(before["events"]);
  auto r = Post(port(), "/affinity/feedback",
                R"({"events":[{"viewer_id":"u1","entity_id":"i1","action":"click"},
                              {"viewer_id":"u1","entity_id":"i2","action":"explode"}]})");
  ASSERT_EQ(r.status, 422) << r.body;
  EXPECT_NE(std::string_view(Json(r.body)["error"]["message"]).find("events[1]"), std::string::npos);
  EXPECT_EQ(int64_t(Json(Get(port(), "/admin/stats").body)["events"]), events_before);
}

TEST_F(ServerTest, HideTakesEffectOnTheNextQuery) {
  auto first = Ids(Post(port(), "/affinity/query", R"({"viewer_id":"u8","k":5})").body);
  ASSERT_FALSE(first.empty());
  auto r = Post(port(), "/affinity/feedback",
                "{\"events\":[{\"viewer_id\":\"u8\",\"entity_id\":\"" + first[0] + "\",\"action\":\"hide\"}]}");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(int64_t(Json(r.body)["accepted"]), 1);
  auto second = Ids(Post(port(), "/affinity/query", R"({"viewer_id":"u8","k":50})").body);
  EXPECT_EQ(std::find(second.begin(), second.end(), first[0]), second.end());
}

TEST_F(ServerTest, FollowRemovesTheAccountFromTheNextUsersList) {
  auto first = Ids(Post(port(), "/affinity/query", R"({"viewer_id":"u9","target":"users","k":5})").body);
  ASSERT_FALSE(first.empty());
  auto r = Post(port(), "/affinity/feedback",
                "{\"events\":[{\"viewer_id\":\"u9\",\"entity_id\":\"" + first[0] + "\",\"action\":\"follow\"}]}");
  ASSERT_EQ(r.status, 202) << r.body;
  auto second = Ids(Post(port(), "/affinity/query", R"({"viewer_id":"u9","target":"users","k":50})").body);
  EXPECT_EQ(std::find(second.begin(), second.end(), first[0]), second.end());
}

TEST_F(ServerTest, NewEntitiesCanBeUpsertedThenEngagedWith) {
  auto r = Post(port(), "/affinity/entities",
                R"({"entities":[{"id":"c-new","kind":"creator","attributes":{"name":"Ana","cohort":"new"}},
                                {"id":"i-new","kind":"item","creator_id":"c-new"}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(int64_t(Json(r.body)["upserted"]), 2);
  r = Post(port(), "/affinity/feedback", R"({"events":[{"viewer_id":"u2","entity_id":"c-new","action":"follow"}]})");
  ASSERT_EQ(r.status, 202) << r.body;
  auto q = Post(port(), "/affinity/query", R"({"viewer_id":"u2","target":"items","k":100})");
  ASSERT_EQ(q.status, 200);
  bool found = false;
  for (auto res : Json(q.body)["results"].get_array())
    if (std::string_view(res["entity_id"]) == "i-new") {
      found = true;
      EXPECT_NE(std::string_view(res["explanation"]["reason"]).find("Ana"), std::string::npos);
    }
  EXPECT_TRUE(found) << q.body;
  auto bad = Post(port(), "/affinity/entities", R"({"entities":[{"id":"x","kind":"planet"}]})");
  EXPECT_EQ(bad.status, 422);
}

TEST_F(ServerTest, AuditRecordHoldsTheResponseAndItsExplanations) {
  auto r = Post(port(), "/affinity/query", R"({"viewer_id":"u4","k":3,"context":{"surface":"home"}})");
  ASSERT_EQ(r.status, 200);
  std::string id(std::string_view(Json(r.body)["request_id"]));
  auto a = Get(port(), "/admin/audit/" + id);
  ASSERT_EQ(a.status, 200) << a.body;
  auto doc = Json(a.body);
  EXPECT_EQ(std::string_view(doc["viewer_id"]), "u4");
  EXPECT_EQ(std::string_view(doc["context"]["surface"]), "home");
  EXPECT_EQ(doc["response"]["results"].get_array().size(), 3u);
  // Stored compactly (the top three, then every contribution and value as
  // float32), read back in full: every blend feature, adding up to the score.
  EXPECT_EQ(a.body.find("attributions_f32"), std::string::npos);
  for (auto res : doc["response"]["results"].get_array()) {
    auto e = res["explanation"];
    EXPECT_EQ(std::string_view(e["method"]), "linear-exact");
    size_t n = 0;
    double sum = double(e["base"]);
    for (auto f : e["top_features"].get_array()) sum += double(f["contribution"]), ++n;
    EXPECT_EQ(n, size_t(kNumFeatures));
    EXPECT_NEAR(sum, double(e["raw_score"]), 1e-4);
    EXPECT_NEAR(sum, double(res["score"]), 1e-4);
  }
}

TEST_F(ServerTest, AuditPruneNeedsTheDataDirAndKeepsRecordsWithinTheRetention) {
  auto r = Post(port(), "/affinity/query", R"({"viewer_id":"u4","k":3})");
  ASSERT_EQ(r.status, 200);
  const std::string id(std::string_view(Json(r.body)["request_id"]));
  auto busy = RunAffinity({"audit", "prune", "--data", dir_ / "data"});
  EXPECT_NE(busy.exit_code, 0);
  EXPECT_NE(busy.output.find("another affinity process"), std::string::npos) << busy.output;
  server_->Stop(SIGTERM);  // drains the audit queue
  auto pruned = RunAffinity({"audit", "prune", "--data", dir_ / "data"});
  ASSERT_EQ(pruned.exit_code, 0) << pruned.output;
  EXPECT_NE(pruned.output.find("older than 2160 hours"), std::string::npos) << pruned.output;
  server_ = std::make_unique<ServerProcess>(dir_ / "data");
  ASSERT_TRUE(server_->running()) << server_->log();
  EXPECT_EQ(Get(port(), "/admin/audit/" + id).status, 200);
}

TEST_F(ServerTest, EventRetentionPrunesTheLogAndRefusesEventsOlderThanIt) {
  server_->Stop(SIGTERM);
  auto forever = RunAffinity({"events", "prune", "--data", dir_ / "data"});
  ASSERT_EQ(forever.exit_code, 0) << forever.output;
  EXPECT_NE(forever.output.find("kept forever, nothing to prune"), std::string::npos) << forever.output;
  const std::string config = dir_ / "retention.toml";
  std::ofstream(config) << "[events]\nretention_hours = 1\n";
  auto pruned = RunAffinity({"events", "prune", "--data", dir_ / "data", "--config", config});
  ASSERT_EQ(pruned.exit_code, 0) << pruned.output;
  EXPECT_NE(pruned.output.find("pruned events older than 1 hours"), std::string::npos) << pruned.output;
  server_ = std::make_unique<ServerProcess>(dir_ / "data", std::vector<std::string>{"--config", config});
  ASSERT_TRUE(server_->running()) << server_->log();
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  auto old = Post(port(), "/affinity/feedback",
                  "{\"events\":[{\"viewer_id\":\"u1\",\"entity_id\":\"i1\",\"action\":\"click\",\"ts\":" +
                      std::to_string(now - 2 * 3'600'000) + "}]}");
  ASSERT_EQ(old.status, 422) << old.body;
  EXPECT_NE(std::string_view(Json(old.body)["error"]["message"]).find("events.retention_hours"), std::string::npos)
      << old.body;
  auto fresh = Post(port(), "/affinity/feedback", R"({"events":[{"viewer_id":"u1","entity_id":"i1","action":"click"}]})");
  EXPECT_EQ(fresh.status, 202) << fresh.body;
}

TEST_F(ServerTest, MetricsExposeLatencyHistogramsAndCounters) {
  Post(port(), "/affinity/query", R"({"viewer_id":"u1"})");
  auto m = Get(port(), "/metrics");
  ASSERT_EQ(m.status, 200);
  for (const char* name : {"affinity_http_request_duration_seconds_bucket", "affinity_query_stage_duration_seconds",
                           "affinity_candidates_total", "affinity_events_ingested_total", "affinity_snapshot_age_seconds",
                           "affinity_store_disk_bytes{part=\"audit\"}", "affinity_store_pending_compaction_bytes"})
    EXPECT_NE(m.body.find(name), std::string::npos) << name;
}

TEST_F(ServerTest, StatsAndHealthEndpointsAnswer) {
  EXPECT_EQ(Get(port(), "/healthz").status, 200);
  EXPECT_EQ(Get(port(), "/readyz").status, 200);
  auto s = Json(Get(port(), "/admin/stats").body);
  EXPECT_EQ(int64_t(s["events"]), 40000);
  EXPECT_EQ(int64_t(s["entities"]), 800 + 40 + 1500);
  EXPECT_EQ(std::string_view(s["snapshot"]), "v000001");
  EXPECT_GT(uint64_t(s["store"]["disk_bytes"]), 0u);  // the imported world's event log
  EXPECT_FALSE(s["store"]["pending_compaction_bytes"].error());
}

TEST_F(ServerTest, AcknowledgedEventsSurviveKill9) {
  int accepted = 0;
  for (int b = 0; b < 20; ++b) {
    std::string body = "{\"events\":[";
    for (int i = 0; i < 50; ++i)
      body += std::string(i ? "," : "") + "{\"viewer_id\":\"u" + std::to_string(i) + "\",\"entity_id\":\"i" +
              std::to_string(b * 50 + i) + "\",\"action\":\"click\"}";
    body += "]}";
    auto r = Post(port(), "/affinity/feedback", body);
    ASSERT_EQ(r.status, 202) << r.body;
    accepted += int(int64_t(Json(r.body)["accepted"]));
  }
  ASSERT_EQ(Post(port(), "/affinity/feedback", R"({"events":[{"viewer_id":"u7","entity_id":"i3","action":"hide"}]})").status, 202);
  accepted += 1;
  server_->Kill9();
  server_ = std::make_unique<ServerProcess>(dir_ / "data");
  ASSERT_TRUE(server_->running()) << server_->log();
  EXPECT_EQ(int64_t(Json(Get(port(), "/admin/stats").body)["events"]), 40000 + accepted);
  auto ids = Ids(Post(port(), "/affinity/query", R"({"viewer_id":"u7","k":200,"exclude":[]})").body);
  EXPECT_EQ(std::find(ids.begin(), ids.end(), "i3"), ids.end());
}

TEST_F(ServerTest, BatchWhileServingIsSwappedInWithoutRestart) {
  auto batch = RunAffinity({"batch", "--data", dir_ / "data"});
  ASSERT_EQ(batch.exit_code, 0) << batch.output;
  std::string version;
  for (int i = 0; i < 70 && version != "v000002"; ++i) {
    ASSERT_EQ(Post(port(), "/affinity/query", R"({"viewer_id":"u1","k":5})").status, 200);
    version = std::string(std::string_view(Json(Get(port(), "/admin/stats").body)["snapshot"]));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(version, "v000002");
}

// A model trained by eval, registered and promoted with the CLI, is swapped into
// the running server; its explanations add up; rollback returns to the blend.
TEST_F(ServerTest, PromotedModelIsServedAndRollbackRestoresTheBlend) {
  auto model = dir_ / "model";
  auto ev = RunAffinity({"eval", "--format", "native", "--train", *world_ / "src", "--ranker", "learned",
                         "--save-model", model});
  ASSERT_EQ(ev.exit_code, 0) << ev.output;
  auto imp = RunAffinity({"model", "import", "--data", dir_ / "data", model});
  ASSERT_EQ(imp.exit_code, 0) << imp.output;
  auto promote = RunAffinity({"model", "promote", "--data", dir_ / "data", "m000001", "--force"});
  ASSERT_EQ(promote.exit_code, 0) << promote.output;
  auto version = [&](const std::string& body) {
    return std::string(std::string_view(Json(body)["model_version"]));
  };
  std::string v;
  std::string body;
  for (int i = 0; i < 70 && v.rfind("lambdamart-m000001", 0) != 0; ++i) {
    body = Post(port(), "/affinity/query", R"({"viewer_id":"u3","k":10,"explain":"full"})").body;
    v = version(body);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(v.rfind("lambdamart-m000001", 0), 0u) << v;
  for (auto r : Json(body)["results"].get_array()) {
    auto e = r["explanation"];
    EXPECT_EQ(std::string_view(e["method"]), "treeshap");
    double sum = double(e["base"]);
    for (auto f : e["top_features"].get_array()) sum += double(f["contribution"]);
    EXPECT_NEAR(sum, double(e["raw_score"]), 1e-3);
  }
  // The audit record keeps every attribution compactly and is read back in full:
  // a path-attributed response's audited explanation names every input and adds up.
  auto served = Json(Post(port(), "/affinity/query", R"({"viewer_id":"u3","k":5})").body);
  const std::string id{std::string_view(served["request_id"])};
  const std::string first{std::string_view(served["results"].at(0)["entity_id"])};
  auto audit = Get(port(), "/admin/audit/" + id);
  ASSERT_EQ(audit.status, 200) << audit.body;
  EXPECT_EQ(audit.body.find("attributions_f32"), std::string::npos);
  auto audited = Json(audit.body)["response"]["results"].get_array();
  ASSERT_GT(audited.size(), 0u);
  for (auto r : audited) {
    auto e = r["explanation"];
    EXPECT_EQ(std::string_view(e["method"]), "saabas");
    size_t n = 0;
    double sum = double(e["base"]);
    for (auto f : e["top_features"].get_array()) sum += double(f["contribution"]), ++n;
    EXPECT_EQ(n, size_t(kNumRankInputs));
    EXPECT_NEAR(sum, double(e["raw_score"]), 1e-3);
  }
  EXPECT_EQ(std::string_view(audited.at(0)["entity_id"]), first);
  // A request can still ask for the blend.
  EXPECT_EQ(version(Post(port(), "/affinity/query", R"({"viewer_id":"u3","ranker":"off"})").body).rfind("blend", 0), 0u);
  // No earlier model: rollback returns to the blend, and says so; a second one
  // has nothing left to roll back.
  auto rb = RunAffinity({"model", "rollback", "--data", dir_ / "data"});
  EXPECT_EQ(rb.exit_code, 0) << rb.output;
  EXPECT_NE(rb.output.find("rolled back to the blend"), std::string::npos) << rb.output;
  bool blend = false;
  for (int i = 0; i < 50 && !blend; ++i) {
    blend = version(Post(port(), "/affinity/query", R"({"viewer_id":"u3"})").body).rfind("blend", 0) == 0;
    if (!blend) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(blend) << "the server ranks with the blend again";
  auto again = RunAffinity({"model", "rollback", "--data", dir_ / "data"});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.output.find("nothing to roll back"), std::string::npos) << again.output;
}

}  // namespace
}  // namespace affinity
