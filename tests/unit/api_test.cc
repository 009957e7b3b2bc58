// The API's request parsing and its start-up answers, without a server.
#include <gtest/gtest.h>

#include "api/requests.h"
#include "api/startup_routes.h"

namespace affinity {
namespace {

TEST(RequestParsingTest, QueryReadsEveryKnobAndRefusesUnknownFields) {
  QueryRequest q;
  auto e = ParseQueryRequest(R"({"viewer_id":"u1","target":"creators","k":7,"seeds":["i1"],"exclude":["c2"],
                                 "explain":"full","diversity":0.3,"ranker":"blend"})",
                             &q);
  ASSERT_TRUE(e.ok()) << e.message;
  EXPECT_EQ(q.viewer_id, "u1");
  EXPECT_EQ(q.target, Kind::kCreator);
  EXPECT_EQ(q.k, 7);
  EXPECT_EQ(q.seeds, std::vector<std::string>{"i1"});
  EXPECT_EQ(q.explain, ExplainMode::kFull);
  EXPECT_DOUBLE_EQ(q.diversity, 0.3);
  EXPECT_EQ(q.ranker, "off");
  QueryRequest bad;
  e = ParseQueryRequest(R"({"viewer_id":"u1","targte":"items"})", &bad);
  EXPECT_EQ(e.status, 422);
  EXPECT_NE(e.message.find("unknown field 'targte'; did you mean 'target'?"), std::string::npos) << e.message;
}

TEST(RequestParsingTest, MalformedJsonIs400AndAnOversizedBatchIs413) {
  QueryRequest q;
  EXPECT_EQ(ParseQueryRequest("{\"viewer_id\":", &q).status, 400);
  EXPECT_EQ(ParseQueryRequest("[1]", &q).status, 400);
  std::vector<RawEvent> events;
  auto e = ParseFeedbackRequest(R"({"events":[{"viewer_id":"u","entity_id":"i","action":"click"},
                                              {"viewer_id":"u","entity_id":"i","action":"click"}]})",
                                1, &events);
  EXPECT_EQ(e.status, 413);
}

TEST(RequestParsingTest, FeedbackNamesTheEventAndTheField) {
  std::vector<RawEvent> events;
  auto e = ParseFeedbackRequest(R"({"events":[{"viewer_id":"u","entity_id":"i","action":"click","ts":5},
                                              {"viewer_id":"u","entity_id":"i","action":"click","weigth":1}]})",
                                100, &events);
  EXPECT_EQ(e.status, 422);
  EXPECT_EQ(e.message.rfind("events[1]: unknown field 'weigth'", 0), 0u) << e.message;
  events.clear();
  e = ParseFeedbackRequest(R"({"events":[{"viewer_id":"u","entity_id":"i","action":"like","weight":2,"ts":1767225600000,
                                          "context":{"request_id":"q_1"}}]})",
                           100, &events);
  ASSERT_TRUE(e.ok()) << e.message;
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(*events[0].weight, 2);
  EXPECT_EQ(*events[0].ts, 1767225600000);
  EXPECT_EQ(events[0].context, R"({"request_id":"q_1"})");
}

TEST(RequestParsingTest, EntityNameIsKeptAmongItsAttributes) {
  std::vector<RawEntity> entities;
  auto e = ParseEntitiesRequest(R"({"entities":[{"id":"c1","kind":"creator","name":"Ana","attributes":{"name":"x","cohort":"new"}}]})",
                                &entities);
  ASSERT_TRUE(e.ok()) << e.message;
  ASSERT_EQ(entities.size(), 1u);
  EXPECT_EQ(entities[0].attributes, R"({"name":"Ana","cohort":"new"})");
  EXPECT_EQ(entities[0].cohort, "new");
}

TEST(StartupRoutesTest, AliveButNotReadyWithProgress) {
  StartupProgress progress;
  progress.stage.store("replaying the event log");
  progress.events.store(1234);
  StartupRoutes routes(&progress);
  HttpRequest req;
  req.method = "GET";
  req.path = "/healthz";
  EXPECT_EQ(routes.Handle(req).status, 200);
  req.path = "/readyz";
  HttpResponse r = routes.Handle(req);
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("\"not_ready\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("replaying the event log (1234 events so far)"), std::string::npos) << r.body;
  req.path = "/affinity/query";
  req.method = "POST";
  r = routes.Handle(req);
  EXPECT_EQ(r.status, 503);
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].first, "Retry-After");
  req.path = "/readyz";
  r = routes.Handle(req);
  EXPECT_EQ(r.status, 405);
}

}  // namespace
}  // namespace affinity
