#include <gtest/gtest.h>

#include <fstream>

#include "base/strings.h"
#include "data/generate.h"
#include "data/importers.h"
#include "testing/world.h"

namespace affinity {
namespace {

using testing::TempDir;
using testing::World;

GenerateOptions Tiny(uint64_t seed) {
  GenerateOptions o;
  o.users = 400;
  o.creators = 20;
  o.items = 600;
  o.events = 20000;
  o.seed = seed;
  o.end_ms = 1'767'225'600'000;  // the test world's clock (2026-01-01)
  return o;
}

void WriteText(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

TEST(GenerateTest, SameSeedWritesIdenticalFiles) {
  TempDir a, b, c;
  ASSERT_TRUE(GenerateWorld(Tiny(1), a.path(), nullptr).ok());
  ASSERT_TRUE(GenerateWorld(Tiny(1), b.path(), nullptr).ok());
  ASSERT_TRUE(GenerateWorld(Tiny(2), c.path(), nullptr).ok());
  EXPECT_EQ(*ReadFile(a / "events.tsv"), *ReadFile(b / "events.tsv"));
  EXPECT_EQ(*ReadFile(a / "entities.tsv"), *ReadFile(b / "entities.tsv"));
  EXPECT_NE(*ReadFile(a / "events.tsv"), *ReadFile(c / "events.tsv"));
}

TEST(GenerateTest, WorldHasEveryActionAndASkewedFollowGraph) {
  TempDir dir;
  GenerateStats stats;
  auto o = Tiny(3);
  o.users = 3000;
  o.events = 100000;
  ASSERT_TRUE(GenerateWorld(o, dir.path(), &stats).ok());
  EXPECT_EQ(stats.events, o.events);
  std::string events = *ReadFile(dir / "events.tsv");
  for (const char* a : {"\tfollow\t", "\tclick\t", "\tlike\t", "\tplay\t", "\thide\t", "\timpression\t", "\tunfollow\t"})
    EXPECT_NE(events.find(a), std::string::npos) << a;
  // In-degree of users: the most followed user has far more followers than the median.
  std::map<std::string, int> indeg;
  for (auto line : Split(events, '\n')) {
    auto f = Split(line, '\t');
    if (f.size() == 5 && f[3] == "follow" && f[2][0] == 'u') indeg[std::string(f[2])]++;
  }
  std::vector<int> d;
  for (auto& [k, v] : indeg) d.push_back(v);
  std::sort(d.begin(), d.end());
  ASSERT_FALSE(d.empty());
  EXPECT_GT(d.back(), 8 * d[d.size() / 2]);
}

TEST(ImportTest, NativeImportLoadsEntitiesAndEvents) {
  TempDir src;
  ASSERT_TRUE(GenerateWorld(Tiny(4), src.path(), nullptr).ok());
  World w;
  ImportStats stats;
  auto s = ImportDataset("native", src.path(), w.clock.NowMillis(), w.ingestor.get(), &stats);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(stats.entities, 1020u);
  EXPECT_EQ(w.store->NextOffset(), 20000u);
  EXPECT_EQ(w.registry.Count(Kind::kCreator), 20u);
}

TEST(ImportTest, BadLineIsNamedAndNothingIsImported) {
  TempDir src;
  WriteText(src / "entities.tsv", "id\tkind\tcreator_id\tcohort\nu1\tuser\t\t\nc1\tcreator\t\t\ni1\titem\tc1\t\n");
  WriteText(src / "events.tsv", "ts\tviewer_id\tentity_id\taction\tweight\n1767200000000\tu1\ti1\tclick\t1\n1767200000001\tu1\ti1\tzap\t1\n");
  World w;
  auto s = ImportDataset("native", src.path(), w.clock.NowMillis(), w.ingestor.get(), nullptr);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("events.tsv:3"), std::string::npos) << s;
  EXPECT_EQ(w.store->NextOffset(), 0u);
  EXPECT_EQ(w.registry.Total(), 0u);
}

TEST(ImportTest, MalformedNumberIsNamedWithFileAndLine) {
  TempDir src;
  WriteText(src / "entities.tsv", "id\tkind\tcreator_id\tcohort\nu1\tuser\t\t\ni1\titem\t\t\n");
  WriteText(src / "events.tsv", "ts\tviewer_id\tentity_id\taction\tweight\nabc\tu1\ti1\tclick\t1\n");
  World w;
  auto s = ImportDataset("native", src.path(), w.clock.NowMillis(), w.ingestor.get(), nullptr);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("events.tsv:2"), std::string::npos) << s;
  EXPECT_EQ(w.registry.Total(), 0u);
}

TEST(ImportTest, LightgcnLinesBecomeUsersItemsAndClicks) {
  TempDir src;
  WriteText(src / "train.txt", "0 1 2 3\n1 2 4\n");
  World w;
  ImportStats stats;
  ASSERT_TRUE(ImportDataset("lightgcn", src.path(), w.clock.NowMillis(), w.ingestor.get(), &stats).ok());
  EXPECT_EQ(w.registry.Count(Kind::kUser), 2u);
  EXPECT_EQ(w.registry.Count(Kind::kItem), 4u);
  EXPECT_EQ(stats.events, 5u);
}

TEST(ImportTest, LightgcnRejectsNonIntegerTokensWithLine) {
  TempDir src;
  WriteText(src / "train.txt", "0 1 2\n1 x\n");
  World w;
  auto s = ImportDataset("lightgcn", src.path(), w.clock.NowMillis(), w.ingestor.get(), nullptr);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("train.txt:2"), std::string::npos) << s;
}

TEST(ImportTest, AFilesTextParsesLineByLineAsTheFileDoes) {
  TempDir src;
  const std::string text = "0 1 2\r\n\n1 2 4";  // a CRLF line, a blank line, no newline at the end
  WriteText(src / "train.txt", text);
  ParsedDataset from_file, from_text;
  ASSERT_TRUE(ParseLightgcn(src.path(), 7, &from_file).ok());
  ASSERT_TRUE(ParseImportLines(ImportFile::kLightgcn, "train.txt", text, 7, &from_text).ok());
  ASSERT_EQ(from_text.events.size(), from_file.events.size());
  for (size_t i = 0; i < from_text.events.size(); ++i) EXPECT_EQ(from_text.events[i].entity_id, from_file.events[i].entity_id);
  EXPECT_EQ(from_text.entities.size(), 5u);  // u0, i1, i2, u1, i4
  ParsedDataset bad;
  const absl::Status s = ParseImportLines(ImportFile::kNativeEvents, "events.tsv",
                                          "ts\tviewer_id\tentity_id\taction\tweight\n5\tu1\ti1\tclick\tx\n", 0, &bad);
  EXPECT_EQ(s.message(), "events.tsv:2: weight 'x' is not a number");
}

TEST(ImportTest, HetrecPlaysBecomeLogWeightedPlaysAndFriendshipsFollows) {
  TempDir src;
  WriteText(src / "user_artists.dat", "userID\tartistID\tweight\n2\t51\t13883\n2\t52\t11690\n3\t51\t10\n");
  WriteText(src / "user_friends.dat", "userID\tfriendID\n2\t3\n3\t2\n");
  WriteText(src / "artists.dat", "id\tname\turl\tpictureURL\n51\tDuran Duran\tu\tp\n52\tMorcheeba\tu\tp\n");
  World w;
  ASSERT_TRUE(ImportDataset("hetrec-lastfm", src.path(), w.clock.NowMillis(), w.ingestor.get(), nullptr).ok());
  EXPECT_EQ(w.registry.Count(Kind::kCreator), 2u);
  EXPECT_EQ(w.registry.Count(Kind::kUser), 2u);
  Ref u2 = *w.registry.Find("u2");
  std::vector<Event> evs;
  ASSERT_TRUE(w.store->ScanEvents([&](const Event& e) { evs.push_back(e); return true; }).ok());
  ASSERT_EQ(evs.size(), 5u);
  EXPECT_EQ(evs[0].action, Action::kPlay);
  EXPECT_NEAR(evs[0].weight, std::log1p(13883.0), 1e-3);
  EXPECT_EQ(evs[3].action, Action::kFollow);
  EXPECT_EQ(evs[3].viewer, u2);
  EXPECT_NE(w.registry.Get(*w.registry.Find("a51"))->attributes.find("Duran Duran"), std::string::npos);
  // Play counts carry no order: the data dir remembers it for `batch`.
  EXPECT_EQ(**w.store->GetMeta(kMetaUnorderedTimelines), "1");
}

TEST(ImportTest, SnapEdgesBecomeMutualFollows) {
  TempDir src;
  WriteText(src / "edges.txt", "# comment\n0 1\n1 2\n");
  World w;
  ImportStats stats;
  ASSERT_TRUE(ImportDataset("snap-edges", src / "edges.txt", w.clock.NowMillis(), w.ingestor.get(), &stats).ok());
  EXPECT_EQ(stats.events, 4u);
  EXPECT_EQ(w.registry.Count(Kind::kUser), 3u);
}

TEST(ImportTest, UnknownFormatIsRefused) {
  World w;
  auto s = ImportDataset("csv", "/nonexistent", 0, w.ingestor.get(), nullptr);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("snap-edges"), std::string::npos);
}

}  // namespace
}  // namespace affinity
