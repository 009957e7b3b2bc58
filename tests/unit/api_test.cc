// The API's request parsing and its start-up answers, without a server.
#include <gtest/gtest.h>

#include "api/requests.h"
#include "api/startup_routes.h"
#include "serving/query_cursor.h"
#include "state/registry.h"

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
  EXPECT_EQ(q.ranker, RankerMode::kOff);
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

// The message of a refused query body, or "accepted".
std::string QueryError(const std::string& body) {
  QueryRequest q;
  RequestError e = ParseQueryRequest(body, &q);
  return e.ok() ? "accepted" : std::to_string(e.status) + " " + e.message;
}
std::string FeedbackError(const std::string& body) {
  std::vector<RawEvent> events;
  RequestError e = ParseFeedbackRequest(body, 100, &events);
  return e.ok() ? "accepted" : std::to_string(e.status) + " " + e.message;
}
std::string EntitiesError(const std::string& body) {
  std::vector<RawEntity> entities;
  RequestError e = ParseEntitiesRequest(body, &entities);
  return e.ok() ? "accepted" : std::to_string(e.status) + " " + e.message;
}

TEST(IdRuleTest, AnIdIsOneTo256BytesOfPrintableUtf8) {
  EXPECT_TRUE(CheckExternalId("u1", "viewer_id").ok());
  EXPECT_TRUE(CheckExternalId("Ana Silva – Café ☕", "id").ok());
  EXPECT_TRUE(CheckExternalId(std::string(256, 'x'), "id").ok());
  auto message = [](std::string_view id) { return std::string(CheckExternalId(id, "viewer_id").message()); };
  EXPECT_EQ(message(""), "viewer_id must be 1 to 256 bytes of printable UTF-8: it is empty");
  EXPECT_EQ(message("   "), "viewer_id must be 1 to 256 bytes of printable UTF-8: it is blank (only spaces)");
  EXPECT_EQ(message(std::string(257, 'x')), "viewer_id must be 1 to 256 bytes of printable UTF-8: it is 257 bytes");
  EXPECT_NE(message(std::string("u\0" "1", 3)).find("control character 0x00 at byte 1"), std::string::npos);
  EXPECT_NE(message("u\t1").find("control character 0x09"), std::string::npos);
  EXPECT_NE(message("u\x7F").find("control character 0x7F"), std::string::npos);
  EXPECT_NE(message("u\xC2\x85").find("control character U+0085"), std::string::npos);  // NEL, a C1 control
  EXPECT_NE(message("u\xFF").find("not valid UTF-8"), std::string::npos);
  EXPECT_NE(message("\xC0\xAF").find("not valid UTF-8"), std::string::npos);  // overlong '/'
  EXPECT_NE(message("\xE2\x82").find("not valid UTF-8"), std::string::npos);  // cut short
}

TEST(RequestParsingTest, IdsAreCheckedOnEveryFieldThatHoldsOne) {
  EXPECT_EQ(QueryError(R"({"viewer_id":""})"), "422 viewer_id must be 1 to 256 bytes of printable UTF-8: it is empty");
  EXPECT_EQ(QueryError(R"({"viewer_id":"  "})").rfind("422 viewer_id must be", 0), 0u);
  EXPECT_EQ(QueryError(R"({"viewer_id":"u\u0000"})").rfind("422 viewer_id must be", 0), 0u);
  EXPECT_EQ(QueryError(R"({"viewer_id":")" + std::string(100000, 'u') + "\"}"),
            "422 viewer_id must be 1 to 256 bytes of printable UTF-8: it is 100000 bytes");
  EXPECT_EQ(QueryError(R"({"viewer_id":"u1","seeds":["i1",""]})").rfind("422 seeds[1] must be", 0), 0u);
  EXPECT_EQ(QueryError(R"({"viewer_id":"u1","exclude":["i\n1"]})").rfind("422 exclude[0] must be", 0), 0u);
  EXPECT_EQ(FeedbackError(R"({"events":[{"viewer_id":"u1","entity_id":"i1","action":"click"},
                                        {"viewer_id":"u\u0001","entity_id":"i1","action":"click"}]})")
                .rfind("422 events[1]: viewer_id must be", 0),
            0u);
  EXPECT_EQ(FeedbackError(R"({"events":[{"viewer_id":"u1","entity_id":" ","action":"click"}]})")
                .rfind("422 events[0]: entity_id must be", 0),
            0u);
  EXPECT_EQ(EntitiesError(R"({"entities":[{"id":"","kind":"item"}]})").rfind("422 entities[0]: id must be", 0), 0u);
  EXPECT_EQ(EntitiesError(R"({"entities":[{"id":"i9","kind":"item","creator_id":"c\u007f"}]})")
                .rfind("422 entities[0]: creator_id must be", 0),
            0u);
  EXPECT_EQ(QueryError(R"({"viewer_id":"Ana Silva","seeds":["Café ☕"]})"), "accepted");
}

TEST(RequestParsingTest, AKeyGivenTwiceIsRefusedByNameWhereverItIs) {
  EXPECT_EQ(QueryError(R"({"viewer_id":"u1","k":5,"k":50})"), "422 key 'k' is given twice");
  EXPECT_EQ(QueryError(R"({"viewer_id":"u1","filter":{"labels_any":["a"],"labels_any":["b"]}})"),
            "422 filter: key 'labels_any' is given twice");
  EXPECT_EQ(QueryError(R"({"viewer_id":"u1","context":{"page":1,"page":2}})"), "422 context: key 'page' is given twice");
  EXPECT_EQ(FeedbackError(R"({"events":[{"viewer_id":"u1","entity_id":"i1","action":"click"},
                                        {"viewer_id":"u1","entity_id":"i1","action":"click","action":"hide"}]})"),
            "422 events[1]: key 'action' is given twice");
  EXPECT_EQ(FeedbackError(R"({"events":[{"viewer_id":"u1","entity_id":"i1","action":"click",
                                         "context":{"request_id":"q_1","request_id":"q_2"}}]})"),
            "422 events[0].context: key 'request_id' is given twice");
  EXPECT_EQ(EntitiesError(R"({"entities":[{"id":"i9","kind":"item","attributes":{"a":{"b":1,"b":2}}}]})"),
            "422 entities[0].attributes.a: key 'b' is given twice");
  EXPECT_EQ(QueryError(R"({"viewer_id":"u1","context":{"page":1,"size":2}})"), "accepted");
}

TEST(RequestParsingTest, KOutOfRangeOrNotAnIntegerNamesK) {
  for (const char* k : {"1e20", "2.5", "0", "501", "-3", "\"5\"", "100000000000000000000"}) {
    const std::string e = QueryError(std::string(R"({"viewer_id":"u1","k":)") + k + "}");
    EXPECT_EQ(e.rfind("422 k", 0), 0u) << k << ": " << e;
  }
  EXPECT_EQ(QueryError(R"({"viewer_id":"u1","k":500})"), "accepted");
  EXPECT_EQ(FeedbackError(R"({"events":[{"viewer_id":"u1","entity_id":"i1","action":"click","ts":123456789012345678901}]})")
                .rfind("422 ts: 123456789012345678901 is out of range", 0),
            0u);
}

TEST(RequestParsingTest, ATimestampInMicrosecondsOrNanosecondsIsRefusedWithAUnitHint) {
  EXPECT_EQ(FeedbackError(R"({"events":[{"viewer_id":"u1","entity_id":"i1","action":"click","ts":1767225600000000}]})"),
            "422 events[0]: ts 1767225600000000 looks like microseconds; ts is unix milliseconds (divide by 1000)");
  EXPECT_EQ(
      FeedbackError(R"({"events":[{"viewer_id":"u1","entity_id":"i1","action":"click","ts":1767225600000000000}]})"),
      "422 events[0]: ts 1767225600000000000 looks like nanoseconds; ts is unix milliseconds (divide by 1000000)");
  EXPECT_EQ(FeedbackError(R"({"events":[{"viewer_id":"u1","entity_id":"i1","action":"click","ts":1767225600000}]})"),
            "accepted");
}

TEST(RequestParsingTest, ANumericRequestIdInFeedbackContextIsRefused) {
  EXPECT_EQ(FeedbackError(R"({"events":[{"viewer_id":"u1","entity_id":"i1","action":"click","context":{"request_id":17}}]})"),
            "422 events[0]: context.request_id must be a string (the request_id of the response the event is about)");
  EXPECT_EQ(FeedbackError(R"({"events":[{"viewer_id":"u1","entity_id":"i1","action":"click","context":{"request_id":"q_1"}}]})"),
            "accepted");
}

// `depth` arrays nested in a query's context (the body's object and the
// context's are two more levels).
std::string NestedContext(int depth) {
  return R"({"viewer_id":"u1","context":{"a":)" + std::string(depth, '[') + std::string(depth, ']') + "}}";
}

TEST(RequestParsingTest, ABodyNestedDeeperThanTheLimitIs400NamingTheLimit) {
  EXPECT_EQ(QueryError(NestedContext(int(kMaxJsonDepth) - 2)), "accepted");
  EXPECT_EQ(QueryError(NestedContext(int(kMaxJsonDepth) - 1)),
            "400 request body nests arrays and objects deeper than 32 levels");
  QueryRequest q;
  EXPECT_EQ(ParseQueryRequest(NestedContext(100000), &q).code, "too_deep");
  // Longer bodies after a short one (the parser grows) keep the limit.
  EXPECT_EQ(QueryError(NestedContext(40) + std::string(100000, ' ')).rfind("400 request body nests", 0), 0u);
  EXPECT_EQ(EntitiesError(R"({"entities":[{"id":"i9","kind":"item","attributes":{"a":)" + std::string(40, '[') +
                          std::string(40, ']') + "}}]}"),
            "400 request body nests arrays and objects deeper than 32 levels");
}

TEST(RequestParsingTest, ABodyThatIsNotUtf8Is400NamingWhereItStops) {
  EXPECT_EQ(QueryError("{\"viewer_id\":\"u\xFF\"}"), "400 request body is not valid UTF-8 (from byte 15)");
  EXPECT_EQ(QueryError("{\"viewer_id\":\"\xC3\xA9\xE2\x82\"}"), "400 request body is not valid UTF-8 (from byte 16)");
  EXPECT_EQ(FeedbackError("{\"events\":[{\"viewer_id\":\"\xC0\xAF\",\"entity_id\":\"i1\",\"action\":\"click\"}]}"),
            "400 request body is not valid UTF-8 (from byte 25)");
  QueryRequest q;
  EXPECT_EQ(ParseQueryRequest("{\"viewer_id\":\"\xED\xA0\x80\"}", &q).code, "invalid_utf8");  // a surrogate
  EXPECT_EQ(QueryError("{\"viewer_id\":\"caf\xC3\xA9\"}"), "accepted");
}

TEST(RequestParsingTest, ANumberBeyondADoubleIs422NamingItsField) {
  EXPECT_EQ(FeedbackError(R"({"events":[{"viewer_id":"u1","entity_id":"i1","action":"click","weight":1e400}]})"),
            "422 weight: 1e400 is out of range (a number here must fit in a double)");
  EXPECT_EQ(QueryError(R"({"viewer_id":"u1","diversity":-2.5e999})"),
            "422 diversity: -2.5e999 is out of range (a number here must fit in a double)");
  EXPECT_EQ(FeedbackError(R"({"events":[{"viewer_id":"u1","entity_id":"i1","action":"click","weight":1e-400}]})"),
            "accepted");  // rounds to zero, as any parser reads it
}

TEST(RequestParsingTest, AContextOverTheLimitIs413NamingTheLimit) {
  const std::string fits = std::string(kMaxContextBytes - 8, 'x'), over = fits + "y";
  EXPECT_EQ(QueryError(R"({"viewer_id":"u1","context":{"s":")" + fits + "\"}}"), "accepted");
  EXPECT_EQ(QueryError(R"({"viewer_id":"u1","context":{"s":")" + over + "\"}}"),
            "413 context is 4097 bytes; at most 4096 bytes of JSON are kept with a request or an event");
  EXPECT_EQ(FeedbackError(R"({"events":[{"viewer_id":"u1","entity_id":"i1","action":"click","context":{"s":")" + over +
                          "\"}}]}"),
            "413 events[0]: context is 4097 bytes; at most 4096 bytes of JSON are kept with a request or an event");
  QueryRequest q;
  EXPECT_EQ(ParseQueryRequest(R"({"viewer_id":"u1","context":{"s":")" + over + "\"}}", &q).code, "payload_too_large");
}

RawEntity CurrentItem() {
  RawEntity e;
  e.id = "i1";
  e.kind = "item";
  e.creator_id = "c1";
  e.cohort = "new";
  e.attributes = R"({"name":"Golden Harbor","year":1999})";
  e.labels = {"jazz", "live"};
  e.expires_at = 1893456000000;
  return e;
}

TEST(EntityPatchTest, ChangesTheNamedFieldsAndKeepsTheRest) {
  RawEntity out;
  ASSERT_TRUE(ParseEntityPatch(R"({"labels":["kids"]})", CurrentItem(), &out).ok());
  EXPECT_EQ(out.labels, std::vector<std::string>{"kids"});
  EXPECT_EQ(out.attributes, R"({"name":"Golden Harbor","year":1999})");
  EXPECT_EQ(out.creator_id, "c1");
  EXPECT_EQ(out.cohort, "new");
  EXPECT_EQ(*out.expires_at, 1893456000000);
  ASSERT_TRUE(ParseEntityPatch(R"({"name":"Silver Bay","cohort":"old"})", CurrentItem(), &out).ok());
  EXPECT_EQ(out.attributes, R"({"name":"Silver Bay","year":1999})");
  EXPECT_EQ(out.cohort, "old");
  EXPECT_EQ(out.labels.size(), 2u);
  // attributes replace the attributes, the display name stays.
  ASSERT_TRUE(ParseEntityPatch(R"({"attributes":{"year":2001,"mood":"calm"}})", CurrentItem(), &out).ok());
  EXPECT_EQ(out.attributes, R"({"name":"Golden Harbor","year":2001,"mood":"calm"})");
  // null clears.
  ASSERT_TRUE(ParseEntityPatch(R"({"expires_at":null,"labels":null,"name":null})", CurrentItem(), &out).ok());
  EXPECT_FALSE(out.expires_at.has_value());
  EXPECT_TRUE(out.labels.empty());
  EXPECT_EQ(out.attributes, R"({"year":1999})");
  // The same id, kind and creator are no change.
  EXPECT_TRUE(ParseEntityPatch(R"({"id":"i1","kind":"item","creator_id":"c1"})", CurrentItem(), &out).ok());
}

TEST(EntityPatchTest, RefusesUnknownFieldsAndChangesOfIdKindOrCreator) {
  RawEntity out;
  auto error = [&](const std::string& body) {
    RequestError e = ParseEntityPatch(body, CurrentItem(), &out);
    return e.ok() ? "accepted" : std::to_string(e.status) + " " + e.message;
  };
  EXPECT_EQ(error(R"({"id":"i2"})").rfind("422 id cannot be changed by PATCH (it is 'i1')", 0), 0u);
  EXPECT_EQ(error(R"({"kind":"creator"})").rfind("422 kind cannot be changed by PATCH", 0), 0u);
  EXPECT_EQ(error(R"({"creator_id":"c2"})").rfind("422 creator_id cannot be changed by PATCH (it is 'c1')", 0), 0u);
  EXPECT_EQ(error(R"({"lables":["x"]})").rfind("422 unknown field 'lables'; did you mean 'labels'?", 0), 0u);
  EXPECT_EQ(error(R"({"expires_at":"soon"})").rfind("422 expires_at must be", 0), 0u);
  EXPECT_EQ(error(R"({"name":"a","name":"b"})"), "422 key 'name' is given twice");
}

QueryResponse PageOf(std::initializer_list<DenseId> ids) {
  QueryResponse resp;
  for (DenseId id : ids) {
    QueryResult r;
    r.ref = Ref(Kind::kItem, id);
    resp.results.push_back(r);
  }
  return resp;
}

TEST(QueryCursorTest, CarriesEveryIdServedSoFarAndEndsWithAShortPage) {
  QueryRequest q;
  q.viewer_id = "u1";
  q.k = 3;
  const int64_t t0 = 1'767'225'600'000;
  const std::string first = NextCursor(q, nullptr, PageOf({40, 7, 900000}), t0);
  ASSERT_FALSE(first.empty());
  EXPECT_EQ(first.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            std::string::npos) << "URL-safe";
  OpenedCursor opened = OpenCursor(first, q, t0 + 1000);
  ASSERT_EQ(opened.problem, CursorProblem::kNone) << opened.message;
  EXPECT_EQ(opened.cursor.served, (std::vector<DenseId>{7, 40, 900000}));
  const std::string second = NextCursor(q, &opened.cursor, PageOf({8, 9, 10}), t0 + 2000);
  opened = OpenCursor(second, q, t0 + 3000);
  ASSERT_EQ(opened.problem, CursorProblem::kNone) << opened.message;
  EXPECT_EQ(opened.cursor.served, (std::vector<DenseId>{7, 8, 9, 10, 40, 900000}));
  EXPECT_EQ(NextCursor(q, &opened.cursor, PageOf({11, 12}), t0), "") << "fewer than k: the end";
  // k may change between pages; the list is the same query's.
  q.k = 50;
  EXPECT_EQ(OpenCursor(second, q, t0 + 3000).problem, CursorProblem::kNone);
}

TEST(QueryCursorTest, RefusesAnExpiredForeignOrDamagedCursor) {
  QueryRequest q;
  q.viewer_id = "u1";
  q.k = 1;
  const int64_t t0 = 1'767'225'600'000;
  const std::string c = NextCursor(q, nullptr, PageOf({5}), t0);
  EXPECT_EQ(OpenCursor(c, q, t0 + kCursorLifetimeMs).problem, CursorProblem::kNone);
  const OpenedCursor old = OpenCursor(c, q, t0 + kCursorLifetimeMs + 1);
  EXPECT_EQ(old.problem, CursorProblem::kExpired);
  EXPECT_NE(old.message.find("without a cursor to start over"), std::string::npos) << old.message;
  QueryRequest other = q;
  other.viewer_id = "u2";
  EXPECT_NE(OpenCursor(c, other, t0).message.find("another viewer_id"), std::string::npos);
  other = q;
  other.target = Kind::kCreator;
  EXPECT_NE(OpenCursor(c, other, t0).message.find("target 'items'"), std::string::npos);
  other = q;
  other.labels_any = {"jazz"};
  EXPECT_EQ(OpenCursor(c, other, t0).problem, CursorProblem::kOtherQuery);
  other = q;
  other.context = R"({"page":2})";
  other.explain = ExplainMode::kFull;
  EXPECT_EQ(OpenCursor(c, other, t0).problem, CursorProblem::kNone) << "context and explain do not change the list";
  std::string damaged = c;
  damaged[damaged.size() / 2] = damaged[damaged.size() / 2] == 'A' ? 'B' : 'A';
  EXPECT_EQ(OpenCursor(damaged, q, t0).problem, CursorProblem::kMalformed);
  EXPECT_EQ(OpenCursor("not a cursor", q, t0).problem, CursorProblem::kMalformed);
}

TEST(QueryCursorTest, AListEndsOnceItHasServedTheMostACursorCarries) {
  QueryRequest q;
  q.viewer_id = "u1";
  q.k = 500;
  const int64_t t0 = 1'767'225'600'000;
  QueryCursor previous;
  for (DenseId id = 0; id < kMaxCursorServed - 500; ++id) previous.served.push_back(id * 3);
  QueryResponse page;
  for (DenseId id = 0; id < 500; ++id) {
    QueryResult r;
    r.ref = Ref(Kind::kItem, 100000 + id);
    page.results.push_back(r);
  }
  EXPECT_EQ(NextCursor(q, &previous, page, t0), "");
  previous.served.pop_back();
  const std::string last = NextCursor(q, &previous, page, t0);
  ASSERT_FALSE(last.empty());
  EXPECT_LT(last.size(), 8000u) << "delta-coded ids stay small";
  EXPECT_EQ(OpenCursor(last, q, t0).cursor.served.size(), kMaxCursorServed - 1);
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

TEST(StartupRoutesTest, HeadOnTheProbesAnswersAsGet) {
  StartupProgress progress;
  StartupRoutes routes(&progress);
  HttpRequest req;
  req.method = "HEAD";
  req.path = "/healthz";
  EXPECT_EQ(routes.Handle(req).status, 200);
  req.path = "/readyz";
  EXPECT_EQ(routes.Handle(req).status, 503);
}

}  // namespace
}  // namespace affinity
