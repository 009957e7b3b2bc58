// End to end: the HTTP surface around entities and queries — HEAD on the
// probes, the id rule on every route, duplicate keys, partial updates, the
// entity listing, the similar list and pages of query results.
#include <chrono>
#include <map>
#include <set>
#include <utility>

#include "integration/server_fixture.h"
#include "serving/query_cursor.h"

namespace affinity {
namespace {

using namespace affinity::testing;

// What a raw HTTP/1.1 exchange returns: the status line, headers and whatever
// followed them before the server closed the connection.
std::string RawExchange(int port, const std::string& request) {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket socket(ioc);
  boost::system::error_code ec;
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), uint16_t(port)}, ec);
  if (ec) return "connect: " + ec.message();
  boost::asio::write(socket, boost::asio::buffer(request), ec);
  std::string out;
  char buf[4096];
  for (;;) {
    const size_t n = socket.read_some(boost::asio::buffer(buf), ec);
    out.append(buf, n);
    if (ec) break;
  }
  return out;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class SurfaceTest : public ServerTest {
 protected:
  std::string Message(const HttpResult& r) {
    std::string_view m;
    if (Json(r.body)["error"]["message"].get(m)) return "<no message in: " + r.body.substr(0, 200) + ">";
    return std::string(m);
  }
  // Every entity of a kind, page by page; fails on a repeated id.
  std::vector<std::string> ListAll(const std::string& kind, int limit, const std::string& extra = "",
                                   int* pages = nullptr) {
    std::vector<std::string> ids;
    std::set<std::string> seen;
    std::string cursor;
    for (int page = 0; page < 10000; ++page) {
      auto r = Get(port(), "/affinity/entities?kind=" + kind + "&limit=" + std::to_string(limit) + extra +
                               (cursor.empty() ? "" : "&cursor=" + cursor));
      EXPECT_EQ(r.status, 200) << r.body;
      if (r.status != 200) break;
      auto doc = Json(r.body);
      for (auto e : doc["entities"].get_array()) {
        std::string id{std::string_view(e["id"])};
        EXPECT_TRUE(seen.insert(id).second) << "listed twice: " << id;
        ids.push_back(id);
      }
      if (pages) *pages = page + 1;
      std::string_view next;
      if (doc["next_cursor"].get(next)) break;  // null: the end
      cursor = std::string(next);
    }
    return ids;
  }
};

TEST_F(SurfaceTest, HeadOnHealthAndReadinessAnswersLikeGetWithoutABody) {
  for (const char* path : {"/healthz", "/readyz"}) {
    const std::string get = Get(port(), path).body;
    const std::string head =
        RawExchange(port(), std::string("HEAD ") + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(head.rfind("HTTP/1.1 200", 0), 0u) << path << ": " << head;
    EXPECT_NE(head.find("Content-Length: " + std::to_string(get.size())), std::string::npos) << head;
    EXPECT_EQ(head.substr(head.find("\r\n\r\n") + 4), "") << "no body";
  }
  // HEAD on a POST route is still a 405.
  const std::string head =
      RawExchange(port(), "HEAD /affinity/query HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(head.rfind("HTTP/1.1 405", 0), 0u) << head;
}

TEST_F(SurfaceTest, IdsAreCheckedOnEveryRouteNamingTheField) {
  const std::string long_id(300, 'x');
  struct Case {
    std::string method, target, body, field;
  };
  const std::vector<Case> cases = {
      {"POST", "/affinity/query", R"({"viewer_id":")" + std::string(100000, 'u') + "\"}", "viewer_id"},
      {"POST", "/affinity/query", R"({"viewer_id":"  "})", "viewer_id"},
      {"POST", "/affinity/query", R"({"viewer_id":"u\u0000"})", "viewer_id"},
      {"POST", "/affinity/query", R"({"viewer_id":"u1","seeds":["i1","i\u0007"]})", "seeds[1]"},
      {"POST", "/affinity/query", R"({"viewer_id":"u1","exclude":[""]})", "exclude[0]"},
      {"POST", "/affinity/feedback", R"({"events":[{"viewer_id":"","entity_id":"i1","action":"click"}]})",
       "events[0]: viewer_id"},
      {"POST", "/affinity/feedback",
       R"({"events":[{"viewer_id":"u1","entity_id":")" + long_id + R"(","action":"click"}]})", "events[0]: entity_id"},
      {"POST", "/affinity/entities", R"({"entities":[{"id":"a\tb","kind":"item"}]})", "entities[0]: id"},
      {"GET", "/affinity/entities/%00", "", "id (in the path)"},
      {"GET", "/affinity/entities/%20%20", "", "id (in the path)"},
      {"DELETE", "/affinity/entities/" + long_id, "", "id (in the path)"},
      {"PATCH", "/affinity/entities/i%0A1", "{}", "id (in the path)"},
      {"GET", "/affinity/entities/i%001/similar", "", "id (in the path)"},
      {"GET", "/affinity/viewers/u%001/events", "", "viewer id (in the path)"},
  };
  for (const Case& c : cases) {
    auto r = HttpCall(port(), c.method, c.target, c.body);
    EXPECT_EQ(r.status, 422) << c.method << " " << c.target.substr(0, 80) << ": " << r.body.substr(0, 300);
    EXPECT_EQ(Message(r).rfind(c.field + " must be 1 to 256 bytes of printable UTF-8", 0), 0u)
        << c.target.substr(0, 80) << ": " << Message(r);
  }
  // Nothing of a refused write was applied, and valid ids still work.
  EXPECT_EQ(Get(port(), "/affinity/entities/a%09b").status, 422);
  EXPECT_EQ(Post(port(), "/affinity/query", R"({"viewer_id":"u1","seeds":["i1"]})").status, 200);
}

TEST_F(SurfaceTest, AmbiguousBodiesAreRefusedByName) {
  auto r = Post(port(), "/affinity/query", R"({"viewer_id":"u1","k":5,"k":500})");
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(Message(r), "key 'k' is given twice");
  r = Post(port(), "/affinity/feedback",
           R"({"events":[{"viewer_id":"u1","entity_id":"i1","action":"click","context":{"request_id":"a","request_id":"b"}}]})");
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(Message(r), "events[0].context: key 'request_id' is given twice");
  r = Post(port(), "/affinity/entities", R"({"entities":[{"id":"i9","kind":"item","kind":"user"}]})");
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(Message(r), "entities[0]: key 'kind' is given twice");
  for (const char* k : {"1e20", "100000000000000000000", "2.5"}) {
    r = Post(port(), "/affinity/query", std::string(R"({"viewer_id":"u1","k":)") + k + "}");
    EXPECT_EQ(r.status, 422) << k << ": " << r.body;
    EXPECT_EQ(Message(r).rfind("k", 0), 0u) << Message(r);
  }
  r = Post(port(), "/affinity/feedback",
           R"({"events":[{"viewer_id":"u1","entity_id":"i1","action":"click","ts":)" +
               std::to_string(NowMs() * 1000) + "}]}");
  EXPECT_EQ(r.status, 422);
  EXPECT_NE(Message(r).find("looks like microseconds; ts is unix milliseconds"), std::string::npos) << r.body;
  r = Post(port(), "/affinity/feedback",
           R"({"events":[{"viewer_id":"u1","entity_id":"i1","action":"click","context":{"request_id":42}}]})");
  EXPECT_EQ(r.status, 422);
  EXPECT_NE(Message(r).find("context.request_id must be a string"), std::string::npos) << r.body;
  EXPECT_EQ(Get(port(), "/affinity/viewers/u1/events?limit=2&limit=3").status, 422);
}

TEST_F(SurfaceTest, BodiesTooDeepNotUtf8OutOfRangeOrWithAHugeContextGetA4xxNamingWhy) {
  auto r = Post(port(), "/affinity/query",
                R"({"viewer_id":"u1","context":{"a":)" + std::string(500, '[') + std::string(500, ']') + "}}");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(ErrorCode(r.body), "too_deep");
  EXPECT_EQ(Message(r), "request body nests arrays and objects deeper than 32 levels");
  r = Post(port(), "/affinity/feedback", "{\"events\":[{\"viewer_id\":\"u\xC3\x28\",\"entity_id\":\"i1\",\"action\":\"click\"}]}");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(ErrorCode(r.body), "invalid_utf8");
  EXPECT_EQ(Message(r), "request body is not valid UTF-8 (from byte 26)");
  r = Post(port(), "/affinity/feedback",
           R"({"events":[{"viewer_id":"u1","entity_id":"i1","action":"click","weight":-1e309}]})");
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(Message(r), "weight: -1e309 is out of range (a number here must fit in a double)");
  r = Post(port(), "/affinity/query", R"({"viewer_id":"u1","context":{"note":")" + std::string(8000, 'n') + "\"}}");
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_EQ(ErrorCode(r.body), "payload_too_large");
  EXPECT_NE(Message(r).find("at most 4096 bytes"), std::string::npos) << r.body;
  // Nothing of it was stored, and the server answers as before.
  EXPECT_EQ(Post(port(), "/affinity/query", R"({"viewer_id":"u1","k":3})").status, 200);
}

TEST_F(SurfaceTest, PatchChangesTheNamedFieldsAndKeepsTheRest) {
  auto r = Post(port(), "/affinity/entities",
                R"({"entities":[{"id":"c-p","kind":"creator","name":"Paper Pines"},
                                {"id":"i-p","kind":"item","creator_id":"c-p","name":"First Light","cohort":"new",
                                 "labels":["jazz"],"attributes":{"year":1999}}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  r = HttpCall(port(), "PATCH", "/affinity/entities/i-p", R"({"labels":["jazz","live"],"name":"Last Light"})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto got = Json(Get(port(), "/affinity/entities/i-p").body);
  EXPECT_EQ(got["labels"].get_array().size(), 2u);
  EXPECT_EQ(std::string_view(got["attributes"]["name"]), "Last Light");
  EXPECT_EQ(int64_t(got["attributes"]["year"]), 1999) << "attributes it did not name are kept";
  EXPECT_EQ(std::string_view(got["creator_id"]), "c-p");
  EXPECT_EQ(std::string_view(got["cohort"]), "new");
  const int64_t later = NowMs() + 3'600'000;
  r = HttpCall(port(), "PATCH", "/affinity/entities/i-p",
               R"({"expires_at":)" + std::to_string(later) + R"(,"cohort":"old","attributes":{"year":2001}})");
  ASSERT_EQ(r.status, 200) << r.body;
  got = Json(r.body);
  EXPECT_EQ(int64_t(got["expires_at"]), later);
  EXPECT_EQ(std::string_view(got["cohort"]), "old");
  EXPECT_EQ(std::string_view(got["attributes"]["name"]), "Last Light");
  EXPECT_EQ(int64_t(got["attributes"]["year"]), 2001);
  EXPECT_EQ(got["labels"].get_array().size(), 2u);
  // Refusals, each naming what is wrong; nothing changes.
  r = HttpCall(port(), "PATCH", "/affinity/entities/i-p", R"({"creator_id":"c1"})");
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(Message(r).rfind("creator_id cannot be changed by PATCH", 0), 0u) << r.body;
  r = HttpCall(port(), "PATCH", "/affinity/entities/i-p", R"({"kind":"user"})");
  EXPECT_EQ(Message(r).rfind("kind cannot be changed by PATCH", 0), 0u) << r.body;
  r = HttpCall(port(), "PATCH", "/affinity/entities/i-p", R"({"id":"i-q"})");
  EXPECT_EQ(Message(r).rfind("id cannot be changed by PATCH", 0), 0u) << r.body;
  r = HttpCall(port(), "PATCH", "/affinity/entities/i-p", R"({"colour":"red"})");
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(Message(r).rfind("unknown field 'colour'", 0), 0u) << r.body;
  r = HttpCall(port(), "PATCH", "/affinity/entities/i-p", R"({"labels":[""]})");
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(HttpCall(port(), "PATCH", "/affinity/entities/nobody-here", "{}").status, 404);
  EXPECT_EQ(std::string_view(Json(Get(port(), "/affinity/entities/i-p").body)["cohort"]), "old");
  // A deleted entity is not patched back to life (an upsert restores it).
  ASSERT_EQ(HttpCall(port(), "DELETE", "/affinity/entities/i-p").status, 200);
  EXPECT_EQ(HttpCall(port(), "PATCH", "/affinity/entities/i-p", R"({"name":"x"})").status, 404);
  EXPECT_EQ(Get(port(), "/affinity/entities/i-p").status, 404);
  // Survives a restart.
  server_.reset();
  server_ = std::make_unique<ServerProcess>(dir_ / "data");
  ASSERT_TRUE(server_->running()) << server_->log();
  EXPECT_EQ(Get(port(), "/affinity/entities/i-p").status, 404);
  EXPECT_EQ(std::string_view(Json(Get(port(), "/affinity/entities/c-p").body)["attributes"]["name"]), "Paper Pines");
}

TEST_F(SurfaceTest, PostUpsertReplacesTheWholeRecord) {
  auto r = Post(port(), "/affinity/entities",
                R"({"entities":[{"id":"c-r","kind":"creator"},
                                {"id":"i-r","kind":"item","creator_id":"c-r","name":"Kept?","labels":["jazz"]}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  r = Post(port(), "/affinity/entities", R"({"entities":[{"id":"i-r","kind":"item","creator_id":"c-r"}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto got = Json(Get(port(), "/affinity/entities/i-r").body);
  EXPECT_EQ(got["labels"].get_array().size(), 0u) << "POST replaces: what it does not name is gone";
  std::string_view name;
  EXPECT_TRUE(got["attributes"]["name"].get(name)) << "no name left";
}

TEST_F(SurfaceTest, ListingGivesEveryLiveEntityOfAKindExactlyOnce) {
  int pages = 0;
  const auto creators = ListAll("creator", 7, "", &pages);
  EXPECT_EQ(creators.size(), 40u);
  EXPECT_EQ(pages, 6);
  EXPECT_EQ(ListAll("item", 1000, "", &pages).size(), 1500u);
  EXPECT_EQ(pages, 2);
  // Deleted and expired entities leave the listing; entities added between
  // pages come once, at the end.
  ASSERT_EQ(HttpCall(port(), "DELETE", "/affinity/entities/" + creators[3]).status, 200);
  auto r = Post(port(), "/affinity/entities",
                R"({"entities":[{"id":")" + creators[5] + R"(","kind":"creator","expires_at":)" +
                    std::to_string(NowMs() - 1000) + "}]}");
  ASSERT_EQ(r.status, 200) << r.body;
  auto first = Json(Get(port(), "/affinity/entities?kind=creator&limit=10").body);
  const std::string cursor{std::string_view(first["next_cursor"])};
  ASSERT_EQ(Post(port(), "/affinity/entities", R"({"entities":[{"id":"c-new","kind":"creator"}]})").status, 200);
  std::vector<std::string> rest;
  std::string next = cursor;
  std::set<std::string> seen;
  for (auto e : first["entities"].get_array()) seen.insert(std::string(std::string_view(e["id"])));
  while (!next.empty()) {
    auto page = Get(port(), "/affinity/entities?kind=creator&limit=10&cursor=" + next);
    ASSERT_EQ(page.status, 200) << page.body;
    auto doc = Json(page.body);
    for (auto e : doc["entities"].get_array())
      EXPECT_TRUE(seen.insert(std::string(std::string_view(e["id"]))).second);
    std::string_view n;
    next = doc["next_cursor"].get(n) ? "" : std::string(n);
  }
  EXPECT_EQ(seen.size(), 39u) << "40 - deleted - expired + added";
  EXPECT_FALSE(seen.count(creators[3]));
  EXPECT_FALSE(seen.count(creators[5]));
  EXPECT_TRUE(seen.count("c-new"));
  // A label narrows it.
  ASSERT_EQ(Post(port(), "/affinity/entities",
                 R"({"entities":[{"id":"i-l1","kind":"item","labels":["kids"]},{"id":"i-l2","kind":"item","labels":["kids","x"]}]})")
                .status,
            200);
  EXPECT_EQ(ListAll("item", 1000, "&label=kids"), (std::vector<std::string>{"i-l1", "i-l2"}));
  // Bad parameters are named.
  for (const auto& [query, field] : std::vector<std::pair<std::string, std::string>>{
           {"kind=items", "kind"}, {"", "kind"}, {"kind=item&limit=0", "limit"}, {"kind=item&limit=1001", "limit"},
           {"kind=item&cursor=zz", "cursor"}, {"kind=item&cursor=creator:3", "cursor"}, {"kind=item&page=2", "page"}}) {
    auto bad = Get(port(), "/affinity/entities?" + query);
    EXPECT_EQ(bad.status, 422) << query;
    EXPECT_NE(Message(bad).find(field), std::string::npos) << query << ": " << Message(bad);
  }
}

TEST_F(SurfaceTest, SimilarListIsOfTheSameKindExplainedAndNeverTheEntityItself) {
  auto top = Json(Post(port(), "/affinity/query", R"({"viewer_id":"u1","k":1})").body);
  const std::string item{std::string_view(top["results"].at(0)["entity_id"])};
  auto r = Get(port(), "/affinity/entities/" + item + "/similar?k=10");
  ASSERT_EQ(r.status, 200) << r.body;
  auto doc = Json(r.body);
  const std::string request_id{std::string_view(doc["request_id"])};
  EXPECT_EQ(request_id.rfind("q_", 0), 0u);
  auto results = doc["results"].get_array();
  ASSERT_EQ(results.size(), 10u);
  std::set<std::string> ids;
  bool similar_reason = false;
  for (auto res : results) {
    const std::string id{std::string_view(res["entity_id"])};
    ids.insert(id);
    EXPECT_NE(id, item);
    const std::string reason{std::string_view(res["explanation"]["reason"])};
    EXPECT_FALSE(reason.empty());
    similar_reason = similar_reason || reason.find("similar to") != std::string::npos ||
                     reason.find("who also engaged with") != std::string::npos;
    EXPECT_GT(res["explanation"]["top_features"].get_array().size(), 0u);
  }
  EXPECT_TRUE(similar_reason) << r.body.substr(0, 2000);
  for (const auto& id : ids)
    EXPECT_EQ(std::string_view(Json(Get(port(), "/affinity/entities/" + id).body)["kind"]), "item") << id;
  // Its audit record is there, as any query's.
  EXPECT_EQ(Get(port(), "/admin/audit/" + request_id).status, 200);
  // A deleted neighbour leaves the list; the list of a creator holds creators.
  const std::string gone = *ids.begin();
  ASSERT_EQ(HttpCall(port(), "DELETE", "/affinity/entities/" + gone).status, 200);
  for (auto res : Json(Get(port(), "/affinity/entities/" + item + "/similar?k=50").body)["results"].get_array())
    EXPECT_NE(std::string_view(res["entity_id"]), gone);
  auto creators = Json(Get(port(), "/affinity/entities/c1/similar?k=5").body)["results"].get_array();
  EXPECT_EQ(creators.size(), 5u);
  for (auto res : creators) EXPECT_EQ(std::string_view(res["entity_id"]).rfind("c", 0), 0u);
  EXPECT_EQ(Get(port(), "/affinity/entities/no-such/similar").status, 404);
  EXPECT_EQ(Get(port(), "/affinity/entities/" + gone + "/similar").status, 404);
  for (const char* k : {"0", "501", "x", "1e3"}) {
    auto bad = Get(port(), "/affinity/entities/" + item + "/similar?k=" + k);
    EXPECT_EQ(bad.status, 422) << k;
    EXPECT_EQ(Message(bad).rfind("k must be", 0), 0u) << Message(bad);
  }
  EXPECT_EQ(HttpCall(port(), "POST", "/affinity/entities/" + item + "/similar").status, 405);
}


TEST_F(SurfaceTest, QueryPagesFollowTheCursorAndNeverRepeatEvenAsScoresMove) {
  const std::string query = R"({"viewer_id":"u1","target":"items","k":10)";
  auto r = Post(port(), "/affinity/query", query + "}");
  ASSERT_EQ(r.status, 200) << r.body;
  std::vector<std::string> served = Ids(r.body);
  ASSERT_EQ(served.size(), 10u);
  std::string_view cursor;
  ASSERT_FALSE(Json(r.body)["next_cursor"].get(cursor)) << r.body.substr(r.body.size() - 200);
  std::string next(cursor);
  // Live events move scores between pages (the first page's items gain
  // likes); no later page repeats an id all the same.
  std::string events = R"({"events":[)";
  for (size_t i = 0; i < served.size(); ++i)
    events += std::string(i ? "," : "") + R"({"viewer_id":"u)" + std::to_string(100 + i) + R"(","entity_id":")" +
              served[i] + R"(","action":"like"})";
  events += "]}";
  ASSERT_EQ(Post(port(), "/affinity/feedback", events).status, 202);
  std::set<std::string> seen(served.begin(), served.end());
  int pages = 1;
  bool ended = false;
  while (pages < 300) {
    r = Post(port(), "/affinity/query", query + R"(,"cursor":")" + next + "\"}");
    ASSERT_EQ(r.status, 200) << r.body;
    ++pages;
    const auto ids = Ids(r.body);
    for (const auto& id : ids) EXPECT_TRUE(seen.insert(id).second) << "page " << pages << " repeats " << id;
    if (Json(r.body)["next_cursor"].get(cursor)) {
      EXPECT_LT(ids.size(), 10u) << "the list ends with a short page";
      ended = true;
      break;
    }
    EXPECT_EQ(ids.size(), 10u);
    next = std::string(cursor);
  }
  EXPECT_TRUE(ended);
  EXPECT_GT(seen.size(), 100u) << "pages reach deep into the list";
  // A response without a cursor field is unchanged otherwise; k may change between pages.
  r = Post(port(), "/affinity/query", query + "}");
  auto first = Json(r.body);
  ASSERT_FALSE(first["next_cursor"].get(cursor));
  r = Post(port(), "/affinity/query",
           R"({"viewer_id":"u1","target":"items","k":25,"cursor":")" + std::string(cursor) + "\"}");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Ids(r.body).size(), 25u);
}

TEST_F(SurfaceTest, ACursorContinuesOnlyItsOwnQueryAndExpiresAfterTenMinutes) {
  auto r = Post(port(), "/affinity/query", R"({"viewer_id":"u1","k":5})");
  std::string_view c;
  ASSERT_FALSE(Json(r.body)["next_cursor"].get(c)) << r.body;
  const std::string cursor(c);
  struct Case {
    std::string body, says;
  };
  for (const Case& bad : std::vector<Case>{
           {R"({"viewer_id":"u2","k":5,"cursor":")" + cursor + "\"}", "another viewer_id"},
           {R"({"viewer_id":"u1","k":5,"target":"creators","cursor":")" + cursor + "\"}", "target 'items'"},
           {R"({"viewer_id":"u1","k":5,"seeds":["i1"],"cursor":")" + cursor + "\"}", "another query"},
           {R"({"viewer_id":"u1","k":5,"cursor":"x)" + cursor + "\"}", "not one this server issued"},
           {R"({"viewer_id":"u1","k":5,"cursor":""})", "cursor must be"}}) {
    r = Post(port(), "/affinity/query", bad.body);
    EXPECT_EQ(r.status, 422) << bad.body;
    EXPECT_NE(Message(r).find(bad.says), std::string::npos) << Message(r);
  }
  // A cursor issued eleven minutes ago.
  QueryRequest q;
  q.viewer_id = "u1";
  q.k = 1;
  QueryResponse page;
  page.results.emplace_back();
  page.results.back().ref = Ref(Kind::kItem, 3);
  const std::string old = NextCursor(q, nullptr, page, NowMs() - 11 * 60 * 1000);
  r = Post(port(), "/affinity/query", R"({"viewer_id":"u1","k":5,"cursor":")" + old + "\"}");
  EXPECT_EQ(r.status, 410) << r.body;
  EXPECT_EQ(ErrorCode(r.body), "cursor_expired");
  EXPECT_NE(Message(r).find("without a cursor to start over"), std::string::npos) << Message(r);
  // A cursor outlives a restart (it holds all it needs).
  server_.reset();
  server_ = std::make_unique<ServerProcess>(dir_ / "data");
  ASSERT_TRUE(server_->running()) << server_->log();
  r = Post(port(), "/affinity/query", R"({"viewer_id":"u1","k":5,"cursor":")" + cursor + "\"}");
  EXPECT_EQ(r.status, 200) << r.body;
}

}  // namespace
}  // namespace affinity
