// Real public datasets (../shared/data) through import, batch and serve.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "testing/http_client.h"
#include "testing/process.h"
#include "testing/temp_dir.h"

namespace affinity {
namespace {

using namespace affinity::testing;

// A fresh clone has no datasets beside it: the tests that need one skip, saying
// what to fetch and where to put it (AFFINITY_SHARED_DATA names another place).
std::string DatasetMissing(const std::string& path, const std::string& what) {
  return "skipped: dataset " + what + " not found at " + path +
         "; fetch it (docs/evaluation.md names each source) into that folder, or set AFFINITY_SHARED_DATA";
}

TEST(DatasetsTest, HetrecLastfmRecommendsArtistsAndFriends) {
  std::string src = SharedData() + "/lastfm-hetrec2011";
  if (!std::filesystem::exists(src + "/user_artists.dat"))
    GTEST_SKIP() << DatasetMissing(src, "HetRec 2011 Last.fm (user_artists.dat, user_friends.dat)");
  TempDir dir;
  auto imp = RunAffinity({"import", "--data", dir / "d", "--format", "hetrec-lastfm", src});
  ASSERT_EQ(imp.exit_code, 0) << imp.output;
  EXPECT_NE(imp.output.find("118268 events"), std::string::npos) << imp.output;  // 92,834 plays + 25,434 follows
  // Play counts carry no order: the data dir remembers it and batch builds no
  // session neighbours from them.
  EXPECT_NE(imp.output.find("no session neighbours"), std::string::npos) << imp.output;
  auto batch = RunAffinity({"batch", "--data", dir / "d"});
  ASSERT_EQ(batch.exit_code, 0) << batch.output;
  EXPECT_NE(batch.output.find(" walks "), std::string::npos) << batch.output;
  EXPECT_EQ(batch.output.find(" sessions "), std::string::npos) << batch.output;
  ServerProcess server(dir / "d");
  ASSERT_TRUE(server.running()) << server.log();
  simdjson::dom::parser parser;
  auto creators = Post(server.port(), "/affinity/query", R"({"viewer_id":"u2","target":"creators","k":10})");
  ASSERT_EQ(creators.status, 200) << creators.body;
  auto doc = parser.parse(creators.body).value();
  ASSERT_EQ(doc["results"].get_array().size(), 10u);
  for (auto r : doc["results"].get_array()) EXPECT_EQ(std::string_view(r["entity_id"])[0], 'a');
  auto friends = Post(server.port(), "/affinity/query", R"({"viewer_id":"u2","target":"users","k":10})");
  ASSERT_EQ(friends.status, 200);
  auto fdoc = parser.parse(friends.body).value();
  bool social = false;
  for (auto r : fdoc["results"].get_array())
    social |= std::string_view(r["explanation"]["reason"]).find("you follow") != std::string_view::npos;
  EXPECT_TRUE(social) << friends.body;
}

TEST(DatasetsTest, SnapEgoFacebookImportsAsMutualFollows) {
  std::string src = SharedData() + "/snap-ego-facebook/facebook_combined.txt";
  if (!std::filesystem::exists(src))
    GTEST_SKIP() << DatasetMissing(src, "SNAP ego-Facebook (facebook_combined.txt)");
  TempDir dir;
  auto imp = RunAffinity({"import", "--data", dir / "d", "--format", "snap-edges", src});
  ASSERT_EQ(imp.exit_code, 0) << imp.output;
  EXPECT_NE(imp.output.find("4039 entities and 176468 events"), std::string::npos) << imp.output;
}

TEST(DatasetsTest, ImportOfAFileWithABadLineFailsNamingTheLine) {
  TempDir dir;
  {
    std::ofstream(dir / "edges.txt") << "0 1\n1 2\nthree 4\n";
  }
  auto imp = RunAffinity({"import", "--data", dir / "d", "--format", "snap-edges", dir / "edges.txt"});
  EXPECT_NE(imp.exit_code, 0);
  EXPECT_NE(imp.output.find("edges.txt:3"), std::string::npos) << imp.output;
}

TEST(DatasetsTest, ImportUnderAnEventRetentionRefusesOlderEventsAndWritesNothing) {
  TempDir dir;
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  std::filesystem::create_directories(dir / "src");
  std::ofstream(dir / "src/entities.tsv") << "id\tkind\tcreator_id\tcohort\nu1\tuser\t\t\ni1\titem\t\t\n";
  std::ofstream(dir / "src/events.tsv") << "ts\tviewer_id\tentity_id\taction\tweight\n"
                                            << now << "\tu1\ti1\tclick\t\n"
                                            << now - 2 * 3'600'000 << "\tu1\ti1\tlike\t\n";
  const std::string config = dir / "retention.toml";
  std::ofstream(config) << "[events]\nretention_hours = 1\n";
  auto refused = RunAffinity({"import", "--data", dir / "d", "--format", "native", "--config", config, dir / "src"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.output.find("events.tsv:3"), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("events.retention_hours"), std::string::npos) << refused.output;
  {
    ServerProcess server(dir / "d");
    ASSERT_TRUE(server.running()) << server.log();
    auto stats = Get(server.port(), "/admin/stats");
    ASSERT_EQ(stats.status, 200);
    simdjson::dom::parser parser;
    auto doc = parser.parse(stats.body).value();
    EXPECT_EQ(uint64_t(doc["events"]), 0u) << stats.body;  // neither the events nor the entities were written
    EXPECT_EQ(uint64_t(doc["entities"]), 0u) << stats.body;
  }
  // Without a retention the same files import whole.
  auto kept = RunAffinity({"import", "--data", dir / "d", "--format", "native", dir / "src"});
  ASSERT_EQ(kept.exit_code, 0) << kept.output;
  EXPECT_NE(kept.output.find("2 entities and 2 events"), std::string::npos) << kept.output;
}

TEST(CommandLineTest, EveryCommandHasHelpAndBadUsageFails) {
  for (const char* cmd : {"serve", "generate", "import", "batch"}) {
    auto r = RunAffinity({cmd, "--help"});
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_NE(r.output.find("--"), std::string::npos);
  }
  EXPECT_NE(RunAffinity({"import", "--data", "/tmp/x"}).exit_code, 0);
  auto missing = RunAffinity({"batch", "--data", "/nonexistent-affinity-dir"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.output.find("import data first"), std::string::npos) << missing.output;
}

}  // namespace
}  // namespace affinity
