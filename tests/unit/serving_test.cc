#include <gtest/gtest.h>
#include <simdjson.h>

#include <cmath>
#include <map>
#include <set>

#include "audit/audit_log.h"
#include "audit/audit_record.h"
#include "batch/pipeline.h"
#include "query/response_json.h"
#include "serving/query_engine.h"
#include "testing/small_snapshot.h"
#include "testing/world.h"

namespace affinity {
namespace {

using testing::LeapingClock;
using testing::World;

class QueryEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    world_.BuildSmall();
    snapshot_ = testing::SmallSnapshot(world_);
    ASSERT_TRUE(snapshot_);
    engine_ = std::make_unique<QueryEngine>(world_.config.serving, &world_.registry, world_.live.get(), nullptr,
                                            nullptr, &world_.clock);
  }
  QueryResponse Run(QueryRequest q) {
    auto r = engine_->QueryWith(q, snapshot_.get());
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : QueryResponse();
  }
  static QueryRequest Req(std::string viewer, Kind target, int k = 10) {
    QueryRequest q;
    q.viewer_id = std::move(viewer);
    q.target = target;
    q.k = k;
    return q;
  }
  World world_;
  std::shared_ptr<Snapshot> snapshot_;
  std::unique_ptr<QueryEngine> engine_;
};

TEST_F(QueryEngineTest, ReturnsAtMostKEntitiesOfTheTargetKindBestFirst) {
  for (Kind k : {Kind::kUser, Kind::kCreator, Kind::kItem}) {
    auto r = Run(Req("u0", k, 3));
    ASSERT_FALSE(r.results.empty()) << KindName(k);
    EXPECT_LE(r.results.size(), 3u);
    for (size_t i = 0; i < r.results.size(); ++i) {
      EXPECT_EQ(r.results[i].ref.kind(), k);
      if (i) {
        EXPECT_GE(r.results[i - 1].score, r.results[i].score);
      }
    }
  }
}

TEST_F(QueryEngineTest, RequestIdsAreUniqueAndOrderedByTime) {
  // Within one millisecond the counter orders them; across milliseconds the time.
  std::vector<std::string> ids;
  for (int i = 0; i < 50; ++i) ids.push_back(Run(Req("u0", Kind::kItem, 3)).request_id);
  world_.clock.Advance(1);
  ids.push_back(Run(Req("u0", Kind::kItem, 3)).request_id);
  for (size_t i = 1; i < ids.size(); ++i) EXPECT_LT(ids[i - 1], ids[i]) << i;
  EXPECT_EQ(ids[0].size(), 24u);
  EXPECT_EQ(ids[0].substr(0, 2), "q_");
  char expected[13];
  std::snprintf(expected, sizeof expected, "%012llx", (unsigned long long)world_.clock.NowMillis());
  EXPECT_EQ(ids.back().substr(2, 12), expected);
}

TEST_F(QueryEngineTest, BlendAuditRecordsAreCompactAndExpandToEveryFeature) {
  AuditLog audit(world_.store.get());
  ServingOptions o = world_.config.serving;
  o.log_ranker_inputs_share = 0;  // the record of a response that logs no training rows
  QueryEngine engine(o, &world_.registry, world_.live.get(), nullptr, &audit, &world_.clock);
  auto r = engine.QueryWith(Req("u0", Kind::kItem, 5), snapshot_.get());
  ASSERT_TRUE(r.ok() && !r->results.empty());
  audit.Flush();
  auto stored = world_.store->GetAudit(r->request_id);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((**stored)[0], '\x04') << "binary, schema 4";
  auto expanded = ExpandAuditRecord(**stored);
  ASSERT_TRUE(expanded.ok()) << expanded.status();
  EXPECT_LT(stored->value().size() * 3, expanded->size());
  simdjson::dom::parser parser2;
  auto results = parser2.parse(*expanded)["response"]["results"].get_array();
  for (size_t i = 0; i < r->results.size(); ++i) {
    const QueryResult& served = r->results[i];
    std::map<std::string, double> contribution;
    for (auto f : results.at(i)["explanation"]["top_features"].get_array())
      contribution[std::string(std::string_view(f["name"]))] = double(f["contribution"]);
    ASSERT_EQ(contribution.size(), size_t(kNumFeatures));
    for (int f = 0; f < kNumFeatures; ++f)
      EXPECT_NEAR(contribution[FeatureName(Feature(f))], served.contribution[f], 1e-6) << FeatureName(Feature(f));
  }
}

TEST_F(QueryEngineTest, NeverReturnsTheViewerOrAccountsItFollows) {
  auto r = Run(Req("u0", Kind::kUser, 10));
  auto state = world_.live->Viewer(*world_.registry.Find("u0"));
  for (const auto& res : r.results) {
    EXPECT_NE(res.entity_id, "u0");
    EXPECT_FALSE(state->Follows(res.ref)) << res.entity_id;
  }
  auto c = Run(Req("u0", Kind::kCreator, 10));
  for (const auto& res : c.results) EXPECT_NE(res.entity_id, "c0");  // every user follows c0
}

TEST_F(QueryEngineTest, HiddenAndExcludedEntitiesAreNeverReturned) {
  auto before = Run(Req("u0", Kind::kItem, 5));
  ASSERT_GE(before.results.size(), 2u);
  std::string top = before.results[0].entity_id, second = before.results[1].entity_id;
  ASSERT_TRUE(world_.Events({World::Ev("u0", top, "hide")}).ok());
  auto q = Req("u0", Kind::kItem, 30);
  q.exclude = {second};
  auto after = Run(q);
  for (const auto& res : after.results) {
    EXPECT_NE(res.entity_id, top);
    EXPECT_NE(res.entity_id, second);
  }
}

TEST_F(QueryEngineTest, ContributionsAddUpToTheScore) {
  auto r = Run(Req("u1", Kind::kItem, 10));
  ASSERT_FALSE(r.results.empty());
  for (const auto& res : r.results) {
    double sum = 0;
    for (float c : res.contribution) sum += c;
    EXPECT_NEAR(sum, res.score, 1e-5);
  }
}

TEST_F(QueryEngineTest, CapsItemsPerCreator) {
  auto q = Req("u2", Kind::kItem, 30);
  q.max_per_creator = 2;
  auto r = Run(q);
  std::map<uint32_t, int> per;
  for (const auto& res : r.results) per[world_.registry.CreatorOf(res.ref).bits]++;
  for (auto& [c, n] : per) EXPECT_LE(n, 2);
  EXPECT_LE(r.results.size(), 6u);  // three creators
}

TEST_F(QueryEngineTest, UnknownViewerGetsAColdStartList) {
  auto r = Run(Req("stranger", Kind::kItem, 5));
  EXPECT_TRUE(r.cold_start);
  EXPECT_EQ(r.results.size(), 5u);
  for (const auto& res : r.results) EXPECT_FALSE(res.reason.empty());
}

TEST_F(QueryEngineTest, SocialProofNamesFollowedAccounts) {
  auto r = Run(Req("u0", Kind::kUser, 10));
  bool found = false;
  for (const auto& res : r.results)
    if (res.reason.find("people you follow") != std::string::npos ||
        res.reason.find("person you follow") != std::string::npos)
      found = true;
  std::string all;
  for (const auto& res : r.results) all += res.entity_id + ": " + res.reason + "\n";
  EXPECT_TRUE(found) << all;
}

TEST_F(QueryEngineTest, SeedsSteerTheList) {
  auto q = Req("stranger", Kind::kItem, 5);
  q.seeds = {"i16"};
  auto r = Run(q);
  ASSERT_FALSE(r.results.empty());
  int odd_group = 0;
  for (const auto& res : r.results) odd_group += std::stoi(res.entity_id.substr(1)) >= 15;
  EXPECT_GE(odd_group, 3);
}

TEST_F(QueryEngineTest, InvalidRequestsAreInvalidArgument) {
  auto q = Req("u0", Kind::kItem, 0);
  EXPECT_EQ(engine_->QueryWith(q, snapshot_.get()).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine_->QueryWith(Req("c0", Kind::kItem), snapshot_.get()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(QueryEngineTest, ExpiredDeadlineSkipsSourcesButStillAnswers) {
  LeapingClock clock;
  QueryEngine engine(world_.config.serving, &world_.registry, world_.live.get(), nullptr, nullptr, &clock);
  auto r = engine.QueryWith(Req("u0", Kind::kItem, 5), snapshot_.get());
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->degraded);
  EXPECT_FALSE(r->skipped.empty());
  EXPECT_FALSE(r->results.empty());
}

TEST_F(QueryEngineTest, WorksBeforeTheFirstSnapshot) {
  auto r = engine_->QueryWith(Req("u0", Kind::kItem, 5), nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->results.size(), 5u);
}

TEST_F(QueryEngineTest, FeaturesPastTheirTtlAreMaskedAndReported) {
  // The snapshot is eight days old: embeddings (TTL 7 days) and popularity (2 days) are stale.
  snapshot_->created_ms = world_.clock.NowMillis() - 8LL * 86400 * 1000;
  auto stale = snapshot_->StaleGroups(world_.clock.NowMillis());
  EXPECT_NE(std::find(stale.begin(), stale.end(), kGroupEntityEmbedding), stale.end());
  EXPECT_NE(std::find(stale.begin(), stale.end(), kGroupPopularity), stale.end());
  auto r = Run(Req("u1", Kind::kItem, 10));
  EXPECT_EQ(r.candidates_per_source[kSrcAnn], 0u);
  for (const auto& res : r.results) {
    EXPECT_EQ(res.value[kFeatEmbedding], 0.f);
    EXPECT_EQ(res.value[kFeatPopularity], 0.f);
  }
  EXPECT_FALSE(r.results.empty());
}

TEST_F(QueryEngineTest, FullExplanationListsEveryFeatureWithBaseAndRawScore) {
  auto r = Run(Req("u0", Kind::kItem, 2));
  JsonWriter w;
  WriteResponseJson(r, ExplainMode::kFull, ResponseForm::kWire, false, w);
  const std::string& json = w.str();
  EXPECT_NE(json.find("\"base\":0"), std::string::npos);
  EXPECT_NE(json.find("\"raw_score\""), std::string::npos);
  for (int f = 0; f < kNumFeatures; ++f) EXPECT_NE(json.find(FeatureName(Feature(f))), std::string::npos);
}

}  // namespace
}  // namespace affinity
