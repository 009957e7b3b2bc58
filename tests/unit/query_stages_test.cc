// Each stage of the query pipeline on its own seam (serving/query_stages.h,
// serving/explanation.h, audit/audit_record.h), over the small world.
#include <gtest/gtest.h>

#include <simdjson.h>

#include <algorithm>
#include <cmath>

#include "audit/audit_log.h"
#include "audit/audit_record.h"
#include "audit/record_codec.h"
#include "ranking/ranker_inputs.h"
#include "serving/explanation.h"
#include "serving/query_engine.h"
#include "serving/query_stages.h"
#include "testing/small_snapshot.h"
#include "testing/world.h"

namespace affinity {
namespace {

using testing::LeapingClock;
using testing::World;

class QueryStagesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    world_.BuildSmall();
    snapshot_ = testing::SmallSnapshot(world_);
    ASSERT_TRUE(snapshot_);
  }
  QueryRequest Req(std::string viewer, Kind target, int k = 10) {
    QueryRequest q;
    q.viewer_id = std::move(viewer);
    q.target = target;
    q.k = k;
    return q;
  }
  std::unique_ptr<ViewerScope> Viewer(const QueryRequest& q) {
    auto v = ResolveViewer(q, world_.config.serving, world_.registry, *world_.live, snapshot_.get(),
                           world_.clock.NowMillis());
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *std::move(v) : nullptr;
  }
  CandidateSet Gather(const ViewerScope& v, const QueryRequest& q, const Clock* clock, QueryResponse* resp) {
    StageTimer timer(clock);
    Deadline deadline(clock, 50'000);
    return GatherCandidates(v.ctx, q, world_.config.serving, world_.registry, deadline, &timer, resp);
  }
  World world_;
  std::shared_ptr<Snapshot> snapshot_;
};

TEST_F(QueryStagesTest, ResolveViewerRefusesANonUserAndMarksColdStart) {
  auto q = Req("i3", Kind::kItem);
  auto bad = ResolveViewer(q, world_.config.serving, world_.registry, *world_.live, snapshot_.get(), 0);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("is an item"), std::string::npos) << bad.status();
  auto unknown = Viewer(Req("someone-new", Kind::kItem));
  EXPECT_TRUE(unknown->cold_start);
  EXPECT_FALSE(unknown->viewer.valid());
  auto seeded = Req("someone-new", Kind::kItem);
  seeded.seeds = {"i3", "not-an-entity"};
  auto s = Viewer(seeded);
  EXPECT_FALSE(s->cold_start);
  ASSERT_EQ(s->seeds.size(), 1u);
  EXPECT_FALSE(s->ctx.anchors.empty());
  EXPECT_FALSE(Viewer(Req("u0", Kind::kItem))->cold_start);
}

TEST_F(QueryStagesTest, GatherSkipsTheSourcesTheDeadlineLeavesNoTimeForButKeepsPopular) {
  auto q = Req("u0", Kind::kItem);
  auto v = Viewer(q);
  QueryResponse resp;
  LeapingClock leaping;
  CandidateSet set = Gather(*v, q, &leaping, &resp);
  EXPECT_TRUE(resp.degraded);
  EXPECT_EQ(resp.skipped, (std::vector<std::string>{"graph", "coengagement", "ann", "walk"}));
  EXPECT_GT(set.size(), 0u);
  EXPECT_EQ(set.CountFrom(kSrcGraph), 0u);
  QueryResponse full;
  CandidateSet all = Gather(*v, q, &world_.clock, &full);
  EXPECT_FALSE(full.degraded);
  EXPECT_GE(all.size(), set.size());
}

TEST_F(QueryStagesTest, FilterDropsSelfHiddenExcludedAndFollowedAndOrdersByScore) {
  ASSERT_TRUE(world_.Events({World::Ev("u0", "u4", "hide")}).ok());
  auto q = Req("u0", Kind::kUser);
  q.exclude = {"u5"};
  auto v = Viewer(q);
  QueryResponse resp;
  CandidateSet set = Gather(*v, q, &world_.clock, &resp);
  BlendRanker blend(world_.config.serving);
  auto kept = FilterAndOrder(blend.Score(v->ctx, set), set, *v, q, world_.registry);
  for (size_t i = 0; i < kept.size(); ++i) {
    const std::string id = world_.registry.ExtId(set.items()[kept[i].index].ref);
    EXPECT_NE(id, "u0");
    EXPECT_NE(id, "u4") << "hidden";
    EXPECT_NE(id, "u5") << "excluded";
    EXPECT_NE(id, "u1") << "followed";
    EXPECT_NE(id, "u2") << "followed";
    if (i) {
      EXPECT_GE(kept[i - 1].score, kept[i].score);
    }
  }
}

TEST_F(QueryStagesTest, LabelledEntitiesOutsideTheSourcesSurviveTheCandidateCut) {
  // Three labelled items by a new creator: no engagement, no popularity, found
  // by no source but the label index. The sources alone fill more than the
  // max_candidates places, as they do for an active viewer of a large world.
  world_.Entities({{"c-kids", "creator", "", "", ""},
                   {"kids-0", "item", "c-kids", "", "", {"kids"}},
                   {"kids-1", "item", "c-kids", "", "", {"kids"}},
                   {"kids-2", "item", "c-kids", "", "", {"kids", "music"}}});
  ServingOptions o = world_.config.serving;
  auto plain = Req("u0", Kind::kItem, 5);
  auto v = Viewer(plain);
  QueryResponse unfiltered;
  StageTimer timer(&world_.clock);
  Deadline deadline(&world_.clock, 50'000);
  o.max_candidates = int(GatherCandidates(v->ctx, plain, o, world_.registry, deadline, &timer, &unfiltered).size()) / 2;
  ASSERT_GE(o.max_candidates, 5) << "the sources must give more candidates than the cut keeps";
  auto q = plain;
  q.labels_any = {"kids"};
  q.exclude_engaged = false;
  QueryResponse resp;
  CandidateSet set = GatherCandidates(v->ctx, q, o, world_.registry, deadline, &timer, &resp);
  BlendRanker blend(o);
  auto kept = FilterAndOrder(blend.Score(v->ctx, set), set, *v, q, world_.registry);
  std::vector<std::string> ids;
  for (const auto& s : kept) ids.push_back(world_.registry.ExtId(set.items()[s.index].ref));
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<std::string>{"kids-0", "kids-1", "kids-2"}));
  // labels_none: what it excludes takes no place either, and never comes back.
  q.labels_any.clear();
  q.labels_none = {"kids"};
  CandidateSet rest = GatherCandidates(v->ctx, q, o, world_.registry, deadline, &timer, &resp);
  EXPECT_EQ(rest.size(), size_t(o.max_candidates));
  for (const auto& c : rest.items()) EXPECT_NE(world_.registry.ExtId(c.ref).rfind("kids-", 0), 0u);
}

TEST_F(QueryStagesTest, RerankWithoutAModelAssemblesInputsInTheBlendsOrder) {
  auto q = Req("u0", Kind::kItem);
  auto v = Viewer(q);
  QueryResponse resp;
  CandidateSet set = Gather(*v, q, &world_.clock, &resp);
  BlendRanker blend(world_.config.serving);
  auto kept = FilterAndOrder(blend.Score(v->ctx, set), set, *v, q, world_.registry);
  const auto before = kept;
  Deadline deadline(&world_.clock, 50'000);
  Reranked rr = Rerank(v->ctx, set, nullptr, /*want_inputs=*/true, 5, deadline, &kept, &resp);
  EXPECT_FALSE(rr.used_learned);
  EXPECT_EQ(rr.depth, std::min<size_t>(5, kept.size()));
  EXPECT_EQ(rr.inputs.size(), rr.depth * kNumRankInputs);
  for (size_t i = 0; i < kept.size(); ++i) {
    EXPECT_EQ(kept[i].index, before[i].index) << "the blend's order stands";
    EXPECT_EQ(rr.input_row[i], i < rr.depth ? uint32_t(i) : UINT32_MAX);
  }
  for (size_t i = 0; i < rr.depth; ++i) EXPECT_EQ(rr.inputs[i * kNumRankInputs + kInBlendRank], float(i));
  Reranked none = Rerank(v->ctx, set, nullptr, /*want_inputs=*/false, 5, deadline, &kept, &resp);
  EXPECT_TRUE(none.inputs.empty());
}

TEST_F(QueryStagesTest, ConstrainTakesTheRequestsCapOverTheConfigured) {
  auto q = Req("u0", Kind::kItem, 9);
  auto v = Viewer(q);
  QueryResponse resp;
  CandidateSet set = Gather(*v, q, &world_.clock, &resp);
  BlendRanker blend(world_.config.serving);
  auto kept = FilterAndOrder(blend.Score(v->ctx, set), set, *v, q, world_.registry);
  Reranked rr;
  rr.input_row.assign(kept.size(), UINT32_MAX);
  for (int cap : {1, 2}) {
    q.max_per_creator = cap;
    auto picks = Constrain(kept, set, rr, q, world_.config.serving, world_.registry, snapshot_.get());
    std::map<uint32_t, int> per_creator;
    for (const Pick& p : picks) per_creator[world_.registry.CreatorOf(set.items()[kept[p.index].index].ref).bits]++;
    for (auto [creator, n] : per_creator) EXPECT_LE(n, cap);
    EXPECT_EQ(picks.size(), size_t(3 * cap)) << "three creators in the small world";
  }
}

TEST_F(QueryStagesTest, ALinkOfFewerCoEngagersThanTheMinimumIsNotCalledSimilar) {
  Explainer explainer(&world_.registry);
  QueryResult r;
  r.contribution[kFeatCoEngagement] = 1;
  Candidate c;
  c.ref = *world_.registry.Find("i9");
  c.via = *world_.registry.Find("i3");
  c.via_seed = true;
  ReasonContext rc;  // similar_min_support 3, the default
  c.via_support = 1;
  EXPECT_EQ(explainer.Reason(r, c, rc), "engaged with by 1 person who also engaged with i3");
  c.via_support = 2;
  EXPECT_EQ(explainer.Reason(r, c, rc), "engaged with by 2 people who also engaged with i3");
  c.via_support = 3;
  EXPECT_EQ(explainer.Reason(r, c, rc), "similar to i3");
  c.via_support = UINT16_MAX;  // a snapshot that did not count it
  EXPECT_EQ(explainer.Reason(r, c, rc), "similar to i3");
  rc.similar_min_support = 1;
  c.via_support = 1;
  EXPECT_EQ(explainer.Reason(r, c, rc), "similar to i3");
  Candidate person;
  person.ref = *world_.registry.Find("u7");
  person.via = *world_.registry.Find("u1");
  person.via_action = Action::kFollow;
  person.via_support = 2;
  rc.similar_min_support = 3;
  EXPECT_EQ(explainer.Reason(r, person, rc), "followed by 2 people who also follow u1, whom you follow");
  person.via_support = 40;
  EXPECT_EQ(explainer.Reason(r, person, rc), "often followed together with u1, whom you follow");
}

TEST_F(QueryStagesTest, ReasonsNameTheSeedsCreatorAndEveryoneBehindSocialProof) {
  Explainer explainer(&world_.registry);
  QueryResult r;
  r.contribution[kFeatCoEngagement] = 1;
  Candidate c;
  c.ref = *world_.registry.Find("c0");
  c.via = *world_.registry.Find("i3");  // i3 is by c0
  c.via_seed = true;
  EXPECT_EQ(explainer.Reason(r, c, {}), "creator of i3");
  c.via_seed = false;
  c.via_action = Action::kLike;
  EXPECT_EQ(explainer.Reason(r, c, {}), "creator of i3, which you liked");
  QueryResult social;
  social.contribution[kFeatSocialGraph] = 1;
  Candidate person;
  person.ref = *world_.registry.Find("u7");
  person.proof = {*world_.registry.Find("u1"), *world_.registry.Find("u2"), *world_.registry.Find("u3")};
  person.n_proof = 3;
  person.common = 5;
  EXPECT_EQ(explainer.Reason(social, person, {}), "followed by 5 people you follow: u1, u2, u3 and 2 more");
  QueryResult profile;
  profile.contribution[kFeatEmbedding] = 1;
  const std::vector<Ref> seeds = {*world_.registry.Find("i3")};
  Candidate item;
  item.ref = *world_.registry.Find("i9");
  EXPECT_EQ(explainer.Reason(profile, item, {false, /*has_history=*/false, &seeds}), "similar to i3");
  EXPECT_EQ(explainer.Reason(profile, item, {false, /*has_history=*/true, &seeds}), "matches your taste profile");
  QueryResult trending;
  trending.contribution[kFeatTrending] = 1;
  EXPECT_NE(explainer.Reason(trending, person, {/*cold_start=*/true, false, nullptr}).find("popular"),
            std::string::npos);
}

// The audit record is the training data: what a response served (its ranker
// inputs per result) must come back from the stored record exactly.
TEST_F(QueryStagesTest, AuditRecordRoundTripsToTheTrainingRowsTheRankerLearnsFrom) {
  QueryEngine engine(world_.config.serving, &world_.registry, world_.live.get(), nullptr, nullptr, &world_.clock);
  auto q = Req("u0", Kind::kItem, 6);
  q.want_inputs = true;
  auto resp = engine.QueryWith(q, snapshot_.get());
  ASSERT_TRUE(resp.ok()) << resp.status();
  ASSERT_FALSE(resp->results.empty());
  const std::string stored = BuildAuditRecord(q, *resp, 1'767'225'600'123, /*with_inputs=*/true);
  EXPECT_EQ(stored[0], '\x04') << "schema 4 is binary";
  const std::string json = BuildAuditRecordJson(q, *resp, 1'767'225'600'123, /*with_inputs=*/true);
  EXPECT_EQ(json.rfind("{\"request_id\":\"" + resp->request_id + "\",\"ts\":1767225600123,\"schema\":1", 0), 0u)
      << json.substr(0, 120);
  auto from_json = ReadLoggedResponse(json);
  ASSERT_TRUE(from_json.ok()) << from_json.status();
  ASSERT_EQ(from_json->results.size(), resp->results.size());
  for (size_t i = 0; i < resp->results.size(); ++i) EXPECT_EQ(from_json->results[i].inputs, resp->results[i].inputs);
  auto logged = ReadLoggedResponse(stored);
  ASSERT_TRUE(logged.ok()) << logged.status();
  EXPECT_EQ(logged->served_ms, 1'767'225'600'123);
  ASSERT_EQ(logged->results.size(), resp->results.size());
  for (size_t i = 0; i < resp->results.size(); ++i) {
    EXPECT_EQ(logged->results[i].entity_id, resp->results[i].entity_id);
    ASSERT_EQ(resp->results[i].inputs.size(), size_t(kNumRankInputs));
    EXPECT_EQ(logged->results[i].inputs, resp->results[i].inputs);
  }
  // Without inputs the record still expands to full explanations, and no rows come back.
  const std::string plain = BuildAuditRecord(q, *resp, 1, /*with_inputs=*/false);
  EXPECT_TRUE(ReadLoggedResponse(plain)->results.empty());
  auto expanded = ExpandAuditRecord(plain);
  ASSERT_TRUE(expanded.ok());
  EXPECT_EQ(expanded->find("attributions_f32"), std::string::npos);
  EXPECT_NE(expanded->find("\"top_features\""), std::string::npos);
  EXPECT_FALSE(ReadLoggedResponse("not json").ok());
  EXPECT_FALSE(ReadLoggedResponse(stored.substr(0, stored.size() / 2)).ok()) << "a truncated record is refused";
}

// A logged response keeps the ranker inputs of the blend's best rows, served
// or not (what a model's drift reference is drawn from): a 3-result response
// logs the same 20 rows, in the blend's order, that a 20-result response
// served by the blend without constraints returns as its results.
TEST_F(QueryStagesTest, ALoggedResponseKeepsTheInputsOfTheBlendsBestRowsServedOrNot) {
  AuditLog audit(world_.store.get());
  ServingOptions o = world_.config.serving;
  o.log_ranker_inputs_share = 1.0;
  QueryEngine engine(o, &world_.registry, world_.live.get(), nullptr, &audit, &world_.clock);
  auto few = Req("u0", Kind::kItem, 3);
  auto resp = engine.QueryWith(few, snapshot_.get());
  ASSERT_TRUE(resp.ok()) << resp.status();
  audit.Flush();
  auto stored = world_.store->GetAudit(resp->request_id);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  auto logged = ReadLoggedResponse(**stored);
  ASSERT_TRUE(logged.ok()) << logged.status();
  ASSERT_EQ(logged->results.size(), 3u);
  auto all = Req("u0", Kind::kItem, 20);
  all.want_inputs = true, all.audit = false, all.max_per_creator = 0, all.diversity = 0;
  auto blend = engine.QueryWith(all, snapshot_.get());
  ASSERT_TRUE(blend.ok()) << blend.status();
  ASSERT_GT(blend->results.size(), 3u) << "the world gives more candidates than the short list serves";
  ASSERT_EQ(logged->head.size(), blend->results.size());
  for (size_t i = 0; i < logged->head.size(); ++i) EXPECT_EQ(logged->head[i], blend->results[i].inputs) << i;
  // A response logged without inputs keeps no head, and a truncated head is refused.
  resp->head_result.assign(2, -1);  // rows the response does not carry: kept as missing, not misread
  resp->head_inputs.clear();
  auto missing = ReadLoggedResponse(BuildAuditRecord(few, *resp, 1, /*with_inputs=*/true));
  ASSERT_TRUE(missing.ok()) << missing.status();
  ASSERT_EQ(missing->head.size(), 2u);
  EXPECT_TRUE(std::all_of(missing->head[1].begin(), missing->head[1].end(), [](float v) { return std::isnan(v); }));
  EXPECT_TRUE(ReadLoggedResponse(BuildAuditRecord(few, *resp, 1, /*with_inputs=*/false))->head.empty());
  EXPECT_FALSE(ReadLoggedResponse(stored->value().substr(0, stored->value().size() - 3)).ok());
}

// Compares two readable records: the same fields, strings equal, numbers equal
// to float precision (the schema field aside).
void ExpectSameRecord(simdjson::dom::element a, simdjson::dom::element b, const std::string& at) {
  using T = simdjson::dom::element_type;
  ASSERT_EQ(a.type() == T::INT64 || a.type() == T::UINT64 || a.type() == T::DOUBLE,
            b.type() == T::INT64 || b.type() == T::UINT64 || b.type() == T::DOUBLE)
      << at;
  switch (a.type()) {
    case T::OBJECT: {
      simdjson::dom::object oa = a, ob = b;
      ASSERT_EQ(oa.size(), ob.size()) << at;
      for (auto field : oa) {
        if (field.key == "schema") continue;
        simdjson::dom::element other;
        ASSERT_FALSE(ob[field.key].get(other)) << at << "." << field.key;
        ExpectSameRecord(field.value, other, at + "." + std::string(field.key));
      }
      break;
    }
    case T::ARRAY: {
      simdjson::dom::array xa = a, xb = b;
      ASSERT_EQ(xa.size(), xb.size()) << at;
      for (size_t i = 0; i < xa.size(); ++i) ExpectSameRecord(xa.at(i), xb.at(i), at + "[" + std::to_string(i) + "]");
      break;
    }
    case T::STRING:
      EXPECT_EQ(std::string_view(a), std::string_view(b)) << at;
      break;
    case T::INT64: case T::UINT64: case T::DOUBLE:
      EXPECT_NEAR(double(a), double(b), 1e-6 * std::max(1.0, std::fabs(double(a)))) << at;
      break;
    default:
      EXPECT_EQ(simdjson::minify(a), simdjson::minify(b)) << at;
  }
}

// Nothing a record said is lost with the binary schema: a blend response, one
// with logged inputs and one with model-scored explanations expand to the same
// readable record as their JSON (schema 1) records.
TEST_F(QueryStagesTest, BinaryAndJsonRecordsExpandToTheSameReadableRecord) {
  QueryEngine engine(world_.config.serving, &world_.registry, world_.live.get(), nullptr, nullptr, &world_.clock);
  auto q = Req("u0", Kind::kItem, 8);
  q.want_inputs = true;
  q.context = R"({"surface":"home","position":3})";
  auto resp = engine.QueryWith(q, snapshot_.get());
  ASSERT_TRUE(resp.ok()) << resp.status();
  QueryResponse learned = *resp;  // as if a model had scored the first three
  learned.attribution_method = "saabas";
  learned.ranker_fallback = true;
  learned.skipped = {"walk"};
  for (size_t i = 0; i < 3 && i < learned.results.size(); ++i) {
    QueryResult& r = learned.results[i];
    r.learned = true;
    r.base = -0.25f - float(i);
    r.input_contrib.assign(kNumRankInputs, 0.f);
    for (int f = 0; f < kNumRankInputs; f += 3) r.input_contrib[f] = 0.01f * float(f + 1) - 0.2f;
  }
  learned.results.back().floor = true;
  simdjson::dom::parser pa, pb;
  for (const QueryResponse* r : {&*resp, &learned})
    for (bool inputs : {false, true}) {
      auto binary = ExpandAuditRecord(BuildAuditRecord(q, *r, 1'767'225'600'000, inputs));
      auto json = ExpandAuditRecord(BuildAuditRecordJson(q, *r, 1'767'225'600'000, inputs));
      ASSERT_TRUE(binary.ok()) << binary.status();
      ASSERT_TRUE(json.ok()) << json.status();
      ExpectSameRecord(pa.parse(*binary).value(), pb.parse(*json).value(), "record");
    }
  // The binary record is the smaller one.
  EXPECT_LT(BuildAuditRecord(q, *resp, 1, true).size(), BuildAuditRecordJson(q, *resp, 1, true).size() * 2 / 3);
}

}  // namespace
}  // namespace affinity

namespace affinity {
namespace {

// A record as builds before schema 3 wrote it: 54 ranker inputs per row, stale
// feature groups in the skipped list marked "stale:".
TEST(AuditRecordTest, ASchema2RecordStillReadsWithItsNarrowerRowsAndStaleGroups) {
  constexpr size_t kOldWidth = 54;
  std::vector<float> contrib(kOldWidth, 0.f), inputs(kOldWidth, 0.f);
  for (size_t i = 0; i < kOldWidth; i += 5) contrib[i] = 0.01f * float(i + 1), inputs[i] = float(i) + 0.5f;
  std::string stored;
  audit_internal::Encoder e(&stored);
  e.U8(2);
  e.Varint(1'767'225'600'000);
  e.Str("q_old");
  e.Str("u1");
  e.U8(uint8_t(Kind::kItem));
  e.Varint(5);
  e.Str("");
  e.Str("lambdamart-m000001");
  e.U8(0);
  e.Str("saabas");
  e.Varint(2);
  e.Str("ann");
  e.Str("stale:popularity");
  e.Varint(1);
  e.Str("i7");
  e.F64(1.25);
  e.U8(1);
  e.U8(2 | 4);  // explained by the learned ranker, inputs logged
  e.Str("trending right now");
  e.F32(0.1f);
  e.SparseFloats(contrib.data(), contrib.size());
  e.SparseFloats(inputs.data(), inputs.size());

  auto logged = ReadLoggedResponse(stored);
  ASSERT_TRUE(logged.ok()) << logged.status();
  ASSERT_EQ(logged->results.size(), 1u);
  const std::vector<float>& row = logged->results[0].inputs;
  ASSERT_EQ(row.size(), size_t(kNumRankInputs));
  for (size_t i = 0; i < kOldWidth; ++i) EXPECT_EQ(row[i], inputs[i]) << i;
  for (size_t i = kOldWidth; i < size_t(kNumRankInputs); ++i) EXPECT_TRUE(std::isnan(row[i])) << i << ": missing";

  auto expanded = ExpandAuditRecord(stored);
  ASSERT_TRUE(expanded.ok()) << expanded.status();
  simdjson::dom::parser parser;
  auto doc = parser.parse(*expanded);
  EXPECT_EQ(int64_t(doc["schema"]), 2);
  auto resp = doc["response"];
  EXPECT_EQ(std::string_view(resp["skipped_sources"].at(0)), "ann") << *expanded;
  EXPECT_EQ(std::string_view(resp["stale_features"].at(0)), "popularity") << *expanded;
  EXPECT_EQ(resp["skipped_sources"].get_array().size(), 1u);
  // A row wider than this build's inputs is refused, not misread.
  std::string wide = stored;
  wide[0] = 3;
  wide.insert(1, 1, char(kNumRankInputs + 1));  // varint width
  EXPECT_FALSE(ReadLoggedResponse(wide).ok());
}

// A record of schema 3 (before the blend's head was logged): its experiments
// and forced arms are optional tails, still read; it has no head.
TEST(AuditRecordTest, ASchema3RecordWithExperimentsStillReads) {
  std::string stored;
  audit_internal::Encoder e(&stored);
  e.U8(3);
  e.Varint(uint64_t(kNumRankInputs));
  e.Varint(1'767'225'600'000);
  e.Str("q_v3");
  e.Str("u1");
  e.U8(uint8_t(Kind::kItem));
  e.Varint(5);
  e.Str("");
  e.Str("blend-v1/v000001");
  e.U8(0);
  e.Str("");
  e.Varint(0);  // skipped
  e.Varint(0);  // stale
  e.Varint(1);
  e.Str("i7");
  e.F64(1.25);
  e.U8(1);
  e.U8(0);
  e.Str("popular");
  std::vector<float> zeros(kNumFeatures, 0.f);
  e.SparseFloats(zeros.data(), zeros.size());
  e.SparseFloats(zeros.data(), zeros.size());
  e.Varint(2);
  e.Str("exp-a"), e.Str("control");
  e.Str("exp-b"), e.Str("treatment");
  e.Varint(1);
  e.Varint(1);  // exp-b's arm was forced
  auto served = ReadServedRecord(stored);
  ASSERT_TRUE(served.ok()) << served.status();
  ASSERT_EQ(served->experiments.size(), 1u);
  EXPECT_EQ(served->experiments[0].experiment, "exp-a");
  auto logged = ReadLoggedResponse(stored);
  ASSERT_TRUE(logged.ok()) << logged.status();
  EXPECT_TRUE(logged->head.empty());
}

}  // namespace
}  // namespace affinity
