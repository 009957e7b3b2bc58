// Configured actions end to end: `[actions] purchase = 3.0` in the configuration
// of `serve`, `import` and `batch`; a purchase changes the next query, survives a
// restart and a kill -9, and keeps its name when the configuration changes.
#include <fstream>

#include "integration/server_fixture.h"

namespace affinity {
namespace {

class ActionsTest : public ServerTest {
 protected:
  // Writes a configuration file and restarts the server with it.
  std::string WriteConfig(const std::string& name, const std::string& text) {
    const std::string path = dir_ / name;
    std::ofstream(path) << text;
    return path;
  }
  void Restart(const std::string& config, bool kill9 = false) {
    if (kill9) server_->Kill9();
    server_.reset();
    server_ = std::make_unique<ServerProcess>(dir_ / "data", std::vector<std::string>{"--config", config});
    ASSERT_TRUE(server_->running()) << server_->log();
  }
  HttpResult Feedback(const std::string& viewer, const std::string& entity, const std::string& action) {
    return Post(port(), "/affinity/feedback",
                R"({"events":[{"viewer_id":")" + viewer + R"(","entity_id":")" + entity + R"(","action":")" + action +
                    R"("}]})");
  }
  // The viewer's newest events' actions, newest first.
  std::vector<std::string> Actions(const std::string& viewer, int n) {
    auto r = Get(port(), "/affinity/viewers/" + viewer + "/events?limit=" + std::to_string(n));
    EXPECT_EQ(r.status, 200) << r.body;
    std::vector<std::string> out;
    for (auto e : Json(r.body)["events"].get_array()) out.emplace_back(std::string_view(e["action"]));
    return out;
  }
  std::vector<std::string> Items(const std::string& viewer) {
    return Ids(Post(port(), "/affinity/query", R"({"viewer_id":")" + viewer + R"(","target":"items","k":20})").body);
  }
};

TEST_F(ActionsTest, PurchaseIsRefused422WithoutConfigurationAndAcceptedUnderActionsPurchase) {
  auto refused = Feedback("u5", "i10", "purchase");
  ASSERT_EQ(refused.status, 422) << refused.body;
  EXPECT_NE(refused.body.find("unknown action 'purchase'"), std::string::npos) << refused.body;
  EXPECT_NE(refused.body.find("hide"), std::string::npos) << refused.body;

  Restart(WriteConfig("actions.toml", "[actions]\npurchase = 3.0\n"));
  auto accepted = Feedback("u5", "i10", "purchase");
  EXPECT_EQ(accepted.status, 202) << accepted.body;
  auto unknown = Feedback("u5", "i10", "rent");
  ASSERT_EQ(unknown.status, 422);
  EXPECT_NE(unknown.body.find("hide, purchase"), std::string::npos) << "the known ones, configured included: "
                                                                      << unknown.body;
}

TEST_F(ActionsTest, AnInvalidActionNameInTheConfigurationIsRefusedAtStartByName) {
  server_.reset();
  auto serve = RunAffinity({"serve", "--data", dir_ / "data", "--port", "0", "--config",
                            WriteConfig("bad.toml", "[actions]\n\"Buy-Now\" = 3.0\n")},
                           30);
  EXPECT_NE(serve.exit_code, 0);
  EXPECT_NE(serve.output.find("actions.Buy-Now"), std::string::npos) << serve.output;
}

TEST_F(ActionsTest, APurchaseChangesTheNextQueryAndSurvivesRestartAndKill9WithItsName) {
  Restart(WriteConfig("actions.toml", "[actions]\npurchase = 3.0\n"));
  auto before = Items("u5");
  ASSERT_FALSE(before.empty());
  const std::string bought = before.front();
  ASSERT_EQ(Feedback("u5", bought, "purchase").status, 202);
  auto after = Items("u5");
  EXPECT_EQ(std::find(after.begin(), after.end(), bought), after.end()) << "already engaged: left out";
  auto events = Json(Get(port(), "/affinity/viewers/u5/events?limit=1").body)["events"].get_array();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(std::string_view(events.at(0)["action"]), "purchase");
  EXPECT_EQ(double(events.at(0)["weight"]), 3.0);
  EXPECT_EQ(std::string_view(events.at(0)["entity_id"]), bought);

  Restart(dir_ / "actions.toml");  // a clean stop (checkpoint) and start
  EXPECT_EQ(Actions("u5", 1), std::vector<std::string>{"purchase"});
  ASSERT_EQ(Feedback("u6", bought, "purchase").status, 202);
  Restart(dir_ / "actions.toml", /*kill9=*/true);
  EXPECT_EQ(Actions("u5", 1), std::vector<std::string>{"purchase"});
  EXPECT_EQ(Actions("u6", 1), std::vector<std::string>{"purchase"});
  after = Items("u5");
  EXPECT_EQ(std::find(after.begin(), after.end(), bought), after.end()) << "still engaged after the replay";
}

TEST_F(ActionsTest, AnActionAddedLaterAndAReorderedOrShortenedConfigurationKeepOldEventsNames) {
  Restart(WriteConfig("a.toml", "[actions]\npurchase = 3.0\n"));
  ASSERT_EQ(Feedback("u5", "i10", "purchase").status, 202);
  Restart(WriteConfig("b.toml", "[actions]\nadd_to_cart = 0.5\nrent = 1.0\npurchase = 3.0\n"));
  ASSERT_EQ(Feedback("u5", "i11", "rent").status, 202);
  ASSERT_EQ(Feedback("u5", "i12", "add_to_cart").status, 202);
  EXPECT_EQ(Actions("u5", 3), (std::vector<std::string>{"add_to_cart", "rent", "purchase"}));
  // purchase removed: its events keep their name; new ones are refused.
  Restart(WriteConfig("c.toml", "[actions]\nrent = 1.0\n"));
  EXPECT_EQ(Actions("u5", 3), (std::vector<std::string>{"add_to_cart", "rent", "purchase"}));
  auto refused = Feedback("u5", "i13", "purchase");
  EXPECT_EQ(refused.status, 422);
  EXPECT_NE(refused.body.find("rent"), std::string::npos) << refused.body;
}

TEST_F(ActionsTest, ImportAndBatchHonourTheConfiguredActions) {
  TempDir src;
  std::ofstream(src / "entities.tsv") << "id\tkind\tcreator_id\tcohort\nv1\tuser\t\t\nc1\tcreator\t\t\n"
                                         "i1\titem\tc1\t\ni2\titem\tc1\t\n";
  std::ofstream(src / "events.tsv") << "ts\tviewer_id\tentity_id\taction\tweight\n"
                                       "1767225000000\tv1\ti1\tpurchase\t\n1767225000001\tv1\ti2\tclick\t1\n";
  TempDir data;
  auto refused = RunAffinity({"import", "--data", data / "d", "--format", "native", src.path()});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.output.find("events.tsv:2"), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("unknown action 'purchase'"), std::string::npos) << refused.output;
  const std::string config = WriteConfig("import.toml", "[actions]\npurchase = 4.0\n");
  auto imported = RunAffinity({"import", "--data", data / "d", "--format", "native", "--config", config, src.path()});
  ASSERT_EQ(imported.exit_code, 0) << imported.output;
  auto batch = RunAffinity({"batch", "--data", data / "d", "--config", config});
  ASSERT_EQ(batch.exit_code, 0) << batch.output;
  server_ = std::make_unique<ServerProcess>(data / "d", std::vector<std::string>{"--config", config});
  ASSERT_TRUE(server_->running()) << server_->log();
  auto events = Json(Get(port(), "/affinity/viewers/v1/events").body)["events"].get_array();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(std::string_view(events.at(1)["action"]), "purchase");
  EXPECT_EQ(double(events.at(1)["weight"]), 4.0);
}

}  // namespace
}  // namespace affinity
