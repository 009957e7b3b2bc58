// End to end: the catalogue's lifecycle (delete, expiry), labels and query
// filters, and the read-back routes.
#include <cctype>
#include <chrono>
#include <map>
#include <set>

#include "integration/server_fixture.h"

namespace affinity {
namespace {

using namespace affinity::testing;

class CatalogueTest : public ServerTest {
 protected:
  std::vector<std::string> Items(const std::string& viewer, int k, const std::string& extra = "") {
    auto r = Post(port(), "/affinity/query",
                  R"({"viewer_id":")" + viewer + R"(","target":"items","k":)" + std::to_string(k) + extra + "}");
    EXPECT_EQ(r.status, 200) << r.body;
    return r.status == 200 ? Ids(r.body) : std::vector<std::string>{};
  }
  // Every live entity of a kind from the listing: id -> the record's `field` (a string, or "").
  std::map<std::string, std::string> Listing(const std::string& kind, const std::string& field) {
    std::map<std::string, std::string> out;
    std::string cursor;
    for (int page = 0; page < 1000; ++page) {
      auto r = Get(port(), "/affinity/entities?kind=" + kind + "&limit=1000" + (cursor.empty() ? "" : "&cursor=" + cursor));
      EXPECT_EQ(r.status, 200) << r.body;
      if (r.status != 200) break;
      auto doc = Json(r.body);
      for (auto e : doc["entities"].get_array()) {
        std::string_view value;
        if (e.at_pointer(field).get(value)) value = "";
        out[std::string(std::string_view(e["id"]))] = std::string(value);
      }
      std::string_view next;
      if (doc["next_cursor"].get(next)) break;
      cursor = std::string(next);
    }
    return out;
  }
  // Whether `text` names `name` as a whole (not "Pines" inside "Pines 3").
  static bool Names(const std::string& text, const std::string& name) {
    for (size_t at = text.find(name); at != std::string::npos; at = text.find(name, at + 1)) {
      const size_t end = at + name.size();
      if (end == text.size() || !(std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == ' ')) return true;
      if (text[end] == ' ' && (end + 1 == text.size() || !std::isdigit(static_cast<unsigned char>(text[end + 1]))))
        return true;
    }
    return false;
  }
  static int64_t NowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

TEST_F(CatalogueTest, DeletedEntityIsNeverRecommendedFromTheNextQuery) {
  auto before = Items("u1", 5);
  ASSERT_FALSE(before.empty());
  const std::string gone = before[0];
  auto del = HttpCall(port(), "DELETE", "/affinity/entities/" + gone);
  ASSERT_EQ(del.status, 200) << del.body;
  for (const char* viewer : {"u1", "u2", "u3", "u4", "u5", "u6"}) {
    auto after = Items(viewer, 100);
    EXPECT_EQ(std::find(after.begin(), after.end(), gone), after.end()) << viewer;
  }
  EXPECT_EQ(Get(port(), "/affinity/entities/" + gone).status, 404);
  EXPECT_EQ(HttpCall(port(), "DELETE", "/affinity/entities/no-such-entity").status, 404);
  auto wrong = HttpCall(port(), "PUT", "/affinity/entities/" + gone);
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.Header("Allow"), "GET, PATCH, DELETE");
  // Deleted survives a restart.
  server_.reset();
  server_ = std::make_unique<ServerProcess>(dir_ / "data");
  ASSERT_TRUE(server_->running()) << server_->log();
  auto restarted = Items("u1", 100);
  EXPECT_EQ(std::find(restarted.begin(), restarted.end(), gone), restarted.end());
}

TEST_F(CatalogueTest, DeletingACreatorRemovesItsItemsFromEveryListAndItsNameFromEveryReason) {
  const auto creator_of = Listing("item", "/creator_id");
  const auto names = Listing("creator", "/attributes/name");
  ASSERT_EQ(names.size(), 40u);
  // Each creator's items in twelve viewers' top 100 and its name in their reasons.
  const std::vector<std::string> viewers = {"u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9", "u10", "u11", "u12"};
  struct Seen {
    std::set<std::string> items;
    int reasons = 0;
  };
  auto look = [&](const std::string& target, const std::string& extra = "") {
    std::map<std::string, Seen> seen;
    for (const auto& viewer : viewers) {
      auto r = Post(port(), "/affinity/query",
                    R"({"viewer_id":")" + viewer + R"(","target":")" + target + R"(","k":100)" + extra + "}");
      EXPECT_EQ(r.status, 200) << r.body;
      for (auto res : Json(r.body)["results"].get_array()) {
        const std::string id{std::string_view(res["entity_id"])};
        const std::string reason{std::string_view(res["explanation"]["reason"])};
        if (auto it = creator_of.find(id); it != creator_of.end()) seen[it->second].items.insert(id);
        if (names.count(id)) seen[id].items.insert(id);
        for (const auto& [creator, name] : names)
          if (Names(reason, name)) ++seen[creator].reasons;
      }
    }
    return seen;
  };
  auto before = look("items");
  std::string gone;
  for (const auto& [creator, s] : before)
    if (gone.empty() || std::make_pair(s.reasons, s.items.size()) >
                            std::make_pair(before[gone].reasons, before[gone].items.size()))
      gone = creator;
  ASSERT_GE(before[gone].reasons, 3) << "a creator the viewers' reasons name";
  ASSERT_GE(before[gone].items.size(), 5u);
  const std::string name = names.at(gone);
  ASSERT_EQ(HttpCall(port(), "DELETE", "/affinity/entities/" + gone).status, 200);

  for (const char* target : {"items", "creators"}) {
    auto after = look(target, R"(,"max_per_creator":0)");
    EXPECT_EQ(after[gone].items.size(), 0u) << target << ": " << *after[gone].items.begin();
    EXPECT_EQ(after[gone].reasons, 0) << target << ": a reason still names " << name;
  }
  // Nor in an item's similar list, nor in the listing.
  for (const auto& [creator, s] : before) {
    if (creator == gone || s.items.empty()) continue;
    auto r = Get(port(), "/affinity/entities/" + *s.items.begin() + "/similar?k=100");
    ASSERT_EQ(r.status, 200) << r.body;
    for (auto res : Json(r.body)["results"].get_array()) {
      EXPECT_NE(creator_of.at(std::string(std::string_view(res["entity_id"]))), gone);
      EXPECT_FALSE(Names(std::string(std::string_view(res["explanation"]["reason"])), name));
    }
  }
  for (const auto& [item, creator] : Listing("item", "/creator_id")) EXPECT_NE(creator, gone) << item;
  EXPECT_FALSE(Listing("creator", "/id").count(gone));
  EXPECT_EQ(Get(port(), "/affinity/entities/" + *before[gone].items.begin() + "/similar").status, 404);

  // Upserting the creator again restores it with its items.
  auto r = Post(port(), "/affinity/entities",
                R"({"entities":[{"id":")" + gone + R"(","kind":"creator","name":")" + name + R"("}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto restored = look("items");
  EXPECT_GE(restored[gone].items.size(), before[gone].items.size() / 2);
  EXPECT_GT(restored[gone].reasons, 0);
}

TEST_F(CatalogueTest, ExpiredEntityIsNeverRecommended) {
  auto before = Items("u2", 5);
  ASSERT_FALSE(before.empty());
  const std::string item = before[0];
  auto record = Json(Get(port(), "/affinity/entities/" + item).body);
  const std::string creator{std::string_view(record["creator_id"])};
  auto r = Post(port(), "/affinity/entities",
                R"({"entities":[{"id":")" + item + R"(","kind":"item","creator_id":")" + creator +
                    R"(","expires_at":)" + std::to_string(NowMs() - 1000) + "}]}");
  ASSERT_EQ(r.status, 200) << r.body;
  auto after = Items("u2", 100);
  EXPECT_EQ(std::find(after.begin(), after.end(), item), after.end());
  // Not yet expired: recommended again.
  r = Post(port(), "/affinity/entities",
           R"({"entities":[{"id":")" + item + R"(","kind":"item","creator_id":")" + creator +
               R"(","expires_at":)" + std::to_string(NowMs() + 3'600'000) + "}]}");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Items("u2", 5)[0], item);
  auto bad = Post(port(), "/affinity/entities", R"({"entities":[{"id":"x1","kind":"item","expires_at":1767225600}]})");
  EXPECT_EQ(bad.status, 422) << bad.body;
}

TEST_F(CatalogueTest, LabelFiltersHoldForEveryResultAndDoNotLeaveTheListShort) {
  // Twelve items labelled "jazz" (and three of them also "live"), by one new creator.
  std::string entities = R"({"entities":[{"id":"c-jazz","kind":"creator","name":"Jazz Club"})";
  for (int i = 0; i < 12; ++i)
    entities += R"(,{"id":"jazz-)" + std::to_string(i) + R"(","kind":"item","creator_id":"c-jazz","labels":["jazz")" +
                (i < 3 ? R"(,"live")" : "") + "]}";
  entities += "]}";
  auto r = Post(port(), "/affinity/entities", entities);
  ASSERT_EQ(r.status, 200) << r.body;
  auto got = Json(Get(port(), "/affinity/entities/jazz-1").body);
  EXPECT_EQ(got["labels"].get_array().size(), 2u);
  EXPECT_EQ(std::string_view(got["creator_id"]), "c-jazz");
  auto jazz = Items("u3", 10, R"(,"max_per_creator":0,"filter":{"labels_any":["jazz"]})");
  ASSERT_EQ(jazz.size(), 10u) << "matching entities exist, so the list is full";
  for (const auto& id : jazz) EXPECT_EQ(id.rfind("jazz-", 0), 0u) << id;
  auto not_live =
      Items("u3", 20, R"(,"max_per_creator":0,"filter":{"labels_any":["jazz"],"labels_none":["live"]})");
  EXPECT_EQ(not_live.size(), 9u);
  for (const auto& id : not_live) {
    EXPECT_EQ(id.rfind("jazz-", 0), 0u) << id;
    EXPECT_NE(id, "jazz-0");
    EXPECT_NE(id, "jazz-1");
    EXPECT_NE(id, "jazz-2");
  }
  auto none = Items("u3", 30, R"(,"filter":{"labels_none":["jazz"]})");
  EXPECT_EQ(none.size(), 30u);
  for (const auto& id : none) EXPECT_NE(id.rfind("jazz-", 0), 0u) << id;
  auto bad = Post(port(), "/affinity/query", R"({"viewer_id":"u3","filter":{"labels":["jazz"]}})");
  EXPECT_EQ(bad.status, 422);
  EXPECT_NE(bad.body.find("filter: unknown field 'labels'"), std::string::npos) << bad.body;
}

TEST_F(CatalogueTest, ViewerEventsComeBackNewestFirst) {
  const int64_t now = NowMs();
  auto r = Post(port(), "/affinity/feedback",
                R"({"events":[{"viewer_id":"u7","entity_id":"i1","action":"click","ts":)" + std::to_string(now - 3000) +
                    R"(},{"viewer_id":"u7","entity_id":"i2","action":"like","ts":)" + std::to_string(now - 2000) +
                    R"(},{"viewer_id":"u7","entity_id":"i3","action":"hide","ts":)" + std::to_string(now - 1000) +
                    R"(,"context":{"request_id":"q_1"}}]})");
  ASSERT_EQ(r.status, 202) << r.body;
  auto got = Get(port(), "/affinity/viewers/u7/events?limit=2");
  ASSERT_EQ(got.status, 200) << got.body;
  auto events = Json(got.body)["events"].get_array();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(std::string_view(events.at(0)["entity_id"]), "i3");
  EXPECT_EQ(std::string_view(events.at(0)["action"]), "hide");
  EXPECT_EQ(std::string_view(events.at(0)["context"]["request_id"]), "q_1");
  EXPECT_EQ(std::string_view(events.at(1)["entity_id"]), "i2");
  EXPECT_GT(int64_t(events.at(0)["ts"]), int64_t(events.at(1)["ts"]));
  auto all = Json(Get(port(), "/affinity/viewers/u7/events").body)["events"].get_array();
  EXPECT_GT(all.size(), 3u) << "the generated history is there too";
  EXPECT_EQ(Get(port(), "/affinity/viewers/nobody/events").status, 404);
  EXPECT_EQ(Get(port(), "/affinity/viewers/u7/events?limit=0").status, 422);
  EXPECT_EQ(Get(port(), "/affinity/viewers/u7/events?limit=101").status, 422);
  // After a restart (the live state is replayed) the same events come back.
  server_.reset();
  server_ = std::make_unique<ServerProcess>(dir_ / "data");
  ASSERT_TRUE(server_->running()) << server_->log();
  auto again = Json(Get(port(), "/affinity/viewers/u7/events?limit=2").body)["events"].get_array();
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(std::string_view(again.at(0)["entity_id"]), "i3");
  EXPECT_EQ(Get(port(), "/affinity/viewers/u7/events?count=5").status, 422);
}

}  // namespace
}  // namespace affinity
