// The feature store as an operator reads it, end to end: the declared groups
// with their governance and freshness, one entity's record per group, stream
// groups that reflect an accepted event at once, and a configuration that
// would let a protected feature rank refused at start.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <set>
#include <thread>

#include "base/section_file.h"
#include "features/feature_store.h"
#include "integration/server_fixture.h"

namespace affinity {
namespace {

using FeaturesTest = ServerTest;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST_F(FeaturesTest, EveryGroupIsListedWithItsGovernanceAndFreshness) {
  auto r = Get(port(), "/admin/features");
  ASSERT_EQ(r.status, 200) << r.body;
  std::set<std::string> names, sources;
  for (auto g : Json(r.body)["groups"].get_array()) {
    const std::string name{std::string_view(g["name"])};
    names.insert(name);
    sources.insert(std::string(std::string_view(g["source"])));
    EXPECT_FALSE(std::string_view(g["owner"]).empty()) << name;
    EXPECT_FALSE(std::string_view(g["description"]).empty()) << name;
    EXPECT_GT(g["features"].get_array().size(), 0u) << name;
    EXPECT_EQ(bool(g["protected"]), name == "cohort") << name;
    EXPECT_FALSE(g["ttl_seconds"].error()) << name;
    EXPECT_FALSE(g["version"].error()) << name;
    if (std::string_view(g["source"]) == "batch") {
      EXPECT_GT(int64_t(g["freshness_ts"]), 0) << name;  // the suite's world is batched
      EXPECT_FALSE(bool(g["stale"])) << name;
    }
  }
  for (const char* g : {"viewer_embedding", "entity_embedding", "popularity", "graph", "engagement", "viewer_activity",
                        "creator_activity", "viewer_creator", "viewer_entity", "cohort"})
    EXPECT_TRUE(names.count(g)) << g;
  EXPECT_EQ(sources, (std::set<std::string>{"batch", "stream"}));
  const std::string metrics = Get(port(), "/metrics").body;
  EXPECT_NE(metrics.find("affinity_feature_freshness_age_seconds{group=\"popularity\"}"), std::string::npos);
  EXPECT_NE(metrics.find("affinity_feature_freshness_stale{group=\"entity_embedding\"} 0"), std::string::npos);
}

TEST_F(FeaturesTest, ABatchRecordCarriesItsVectorFreshnessAndProvenance) {
  auto r = Get(port(), "/admin/features/viewer_embedding/u1");
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = Json(r.body);
  EXPECT_EQ(std::string_view(j["entity_id"]), "u1");
  EXPECT_EQ(std::string_view(j["group"]), "viewer_embedding");
  size_t n = 0;
  for (auto f : j["feature_vector"].get_object()) {
    EXPECT_EQ(std::string_view(f.key).rfind("als_", 0), 0u);
    ++n;
  }
  EXPECT_EQ(n, 32u);  // batch.als_factors
  EXPECT_GT(int64_t(j["freshness_ts"]), 0);
  EXPECT_EQ(std::string_view(j["provenance"]["source"]), "batch");
  EXPECT_EQ(std::string_view(j["provenance"]["snapshot"]).rfind("v", 0), 0u);
  EXPECT_GT(int64_t(j["provenance"]["watermark_offset"]), 0);
  // The protected cohort is readable (fairness), and says it is protected.
  auto cohort = Json(Get(port(), "/admin/features/cohort/u1").body);
  EXPECT_TRUE(bool(cohort["protected"]));
  EXPECT_FALSE(cohort["feature_vector"]["cohort"].error());
}

TEST_F(FeaturesTest, StreamGroupsReflectAnAcceptedEventAtOnce) {
  auto before = Json(Get(port(), "/admin/features/viewer_activity/u5").body);
  const int64_t events = int64_t(before["feature_vector"]["events"]);
  const int64_t ts = NowMs() / 1000 * 1000 + 357;  // a time with milliseconds: kept to them
  ASSERT_EQ(Post(port(), "/affinity/feedback",
                 R"({"events":[{"viewer_id":"u5","entity_id":"i7","action":"click","ts":)" + std::to_string(ts) + "}]}")
                .status,
            202);
  auto after = Get(port(), "/admin/features/viewer_activity/u5");
  ASSERT_EQ(after.status, 200) << after.body;
  auto a = Json(after.body);
  EXPECT_EQ(int64_t(a["feature_vector"]["events"]), events + 1);
  EXPECT_EQ(int64_t(a["feature_vector"]["last_event_ms"]), ts);
  EXPECT_EQ(int64_t(a["freshness_ts"]), ts);
  EXPECT_GT(double(a["feature_vector"]["engaged_1h"]), 0.0);  // (before the parser is reused)
  auto engagement = Json(Get(port(), "/admin/features/engagement/i7").body);
  EXPECT_EQ(int64_t(engagement["feature_vector"]["last_engaged_ms"]), ts);
  EXPECT_EQ(int64_t(engagement["freshness_ts"]), ts);
  EXPECT_GT(double(engagement["feature_vector"]["decayed_count_24h"]), 0.0);
  EXPECT_EQ(std::string_view(engagement["provenance"]["source"]), "stream");
  EXPECT_GT(double(engagement["feature_vector"]["count_1h"]), 0.0);
  // The item's creator: its engagement at three half-lives, and its velocity.
  const std::string creator{std::string_view(Json(Get(port(), "/affinity/entities/i7").body)["creator_id"])};
  auto c = Get(port(), "/admin/features/creator_activity/" + creator);
  ASSERT_EQ(c.status, 200) << c.body;
  auto cj = Json(c.body);
  EXPECT_GT(double(cj["feature_vector"]["count_1h"]), 0.0) << c.body;
  EXPECT_GE(double(cj["feature_vector"]["count_7d"]), double(cj["feature_vector"]["count_1d"])) << c.body;
  EXPECT_GT(double(cj["feature_vector"]["velocity"]), 0.0) << c.body;
  EXPECT_EQ(int64_t(cj["freshness_ts"]), ts);
  EXPECT_EQ(int64_t(cj["feature_vector"]["last_engaged_ms"]), ts);
  EXPECT_EQ(Get(port(), "/admin/features/creator_activity/u5").status, 404);  // not a creator
  // The arrival-to-visible time of that batch is in the histogram.
  EXPECT_NE(Get(port(), "/metrics").body.find("affinity_event_visible_seconds_count 1"), std::string::npos);
}

TEST_F(FeaturesTest, PairGroupsReadAViewersRecencyWithACreatorAndWithAnEntity) {
  const int64_t ts = NowMs();
  ASSERT_EQ(Post(port(), "/affinity/feedback",
                 R"({"events":[{"viewer_id":"u6","entity_id":"i9","action":"click","ts":)" + std::to_string(ts - 5000) +
                     R"(},{"viewer_id":"u6","entity_id":"i9","action":"like","ts":)" + std::to_string(ts) + "}]}")
                .status,
            202);
  const std::string creator{std::string_view(Json(Get(port(), "/affinity/entities/i9").body)["creator_id"])};
  // The viewer and one creator: its engagements and the newest.
  auto vc = Get(port(), "/admin/features/viewer_creator/u6?with=" + creator);
  ASSERT_EQ(vc.status, 200) << vc.body;
  auto j = Json(vc.body);
  EXPECT_EQ(std::string_view(j["with"]), creator);
  EXPECT_GE(int64_t(j["feature_vector"]["engagements"]), 2);
  EXPECT_EQ(int64_t(j["feature_vector"]["last_engaged_ms"]), ts);
  EXPECT_GE(double(j["feature_vector"]["seconds_since"]), 0.0);
  EXPECT_EQ(int64_t(j["freshness_ts"]), ts);
  EXPECT_EQ(std::string_view(j["provenance"]["source"]), "stream");
  EXPECT_GT(int64_t(j["provenance"]["log_offset"]), 0);
  // The viewer and one entity.
  auto ve = Json(Get(port(), "/admin/features/viewer_entity/u6?with=i9").body);
  EXPECT_EQ(int64_t(ve["feature_vector"]["engaged_ever"]), 1);
  EXPECT_EQ(int64_t(ve["feature_vector"]["recent_interactions"]), 2);
  EXPECT_EQ(int64_t(ve["feature_vector"]["last_engaged_ms"]), ts);
  // Without `with`: the viewer's pairs, newest first.
  auto list = Json(Get(port(), "/admin/features/viewer_entity/u6").body);
  EXPECT_GT(int64_t(list["feature_vector"]["pairs"]), 0);
  EXPECT_EQ(std::string_view(list["pairs"].at(0)["with"]), "i9");
  auto creators = Json(Get(port(), "/admin/features/viewer_creator/u6").body);
  EXPECT_EQ(std::string_view(creators["pairs"].at(0)["with"]), creator);
  // A pair never engaged reads as none; bad pairs are named.
  auto never = Json(Get(port(), "/admin/features/viewer_entity/u6?with=i1499").body);
  EXPECT_EQ(int64_t(never["feature_vector"]["recent_interactions"]), 0);
  EXPECT_EQ(double(never["feature_vector"]["seconds_since"]), -1.0);
  auto r = Get(port(), "/admin/features/viewer_creator/u6?with=i9");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("'i9' is not a creator"), std::string::npos) << r.body;
  r = Get(port(), "/admin/features/viewer_creator/u6?with=nobody");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("no entity 'nobody'"), std::string::npos) << r.body;
  EXPECT_EQ(Get(port(), "/admin/features/engagement/i9?with=u6").status, 422);
  EXPECT_EQ(Get(port(), "/admin/features/viewer_entity/u6?since=1").status, 422);
  // And on the command line.
  auto cli = RunAffinity({"features", "get", "viewer_creator", "u6", "--with", creator, "--url",
                          "http://127.0.0.1:" + std::to_string(port())});
  EXPECT_EQ(cli.exit_code, 0) << cli.output;
  EXPECT_NE(cli.output.find("last_engaged_ms  " + std::to_string(ts)), std::string::npos)
      << "read as a person reads it, the time exact: " << cli.output;
  auto raw = RunAffinity({"features", "get", "viewer_creator", "u6", "--with", creator, "--json", "--url",
                          "http://127.0.0.1:" + std::to_string(port())});
  EXPECT_EQ(raw.exit_code, 0) << raw.output;
  EXPECT_NE(raw.output.find("\"last_engaged_ms\":" + std::to_string(ts)), std::string::npos) << raw.output;
}

TEST_F(FeaturesTest, AGroupPastItsTtlIsMaskedAndResponsesAndAuditRecordsNameIt) {
  const std::string config = dir_ / "ttl.toml";
  std::ofstream(config) << "[features.popularity]\nttl_seconds = 1\n";
  server_.reset();
  server_ = std::make_unique<ServerProcess>(dir_ / "data", std::vector<std::string>{"--config", config});
  ASSERT_TRUE(server_->running()) << server_->log();
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // the suite's snapshot is older than 1 s
  auto r = Post(port(), "/affinity/query", R"({"viewer_id":"u1","k":5})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = Json(r.body);
  std::vector<std::string> stale;
  for (auto g : j["stale_features"].get_array()) stale.emplace_back(std::string_view(g));
  EXPECT_EQ(stale, std::vector<std::string>{"popularity"}) << r.body;
  const std::string request_id{std::string_view(j["request_id"])};
  const std::string audit = Get(port(), "/admin/audit/" + request_id).body;
  EXPECT_NE(audit.find("\"stale_features\":[\"popularity\"]"), std::string::npos) << audit;
  EXPECT_EQ(audit.find("stale:"), std::string::npos) << audit;  // not among the skipped sources
  EXPECT_NE(Get(port(), "/metrics").body.find("affinity_feature_freshness_stale{group=\"popularity\"} 1"),
            std::string::npos);
  EXPECT_NE(Get(port(), "/admin/stats").body.find("\"stale_feature_groups\":[\"popularity\"]"), std::string::npos);
}

TEST_F(FeaturesTest, AnUnknownGroupOrEntityIsA404NamingIt) {
  auto r = Get(port(), "/admin/features/nope/u1");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("no feature group 'nope'"), std::string::npos) << r.body;
  r = Get(port(), "/admin/features/graph/nobody");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("no entity 'nobody'"), std::string::npos) << r.body;
  r = Get(port(), "/admin/features/viewer_embedding/i1");  // an item has no viewer embedding
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("has no record for 'i1'"), std::string::npos) << r.body;
  EXPECT_EQ(Post(port(), "/admin/features", "{}").status, 405);
}

TEST_F(FeaturesTest, TheCommandLineListsDescribesAndReadsRecords) {
  const std::string url = "http://127.0.0.1:" + std::to_string(port());
  auto list = RunAffinity({"features", "list", "--url", url, "--json"});
  EXPECT_EQ(list.exit_code, 0) << list.output;
  EXPECT_NE(list.output.find("\"name\":\"viewer_activity\""), std::string::npos) << list.output;
  auto describe = RunAffinity({"features", "describe", "cohort", "--url", url, "--json"});
  EXPECT_EQ(describe.exit_code, 0) << describe.output;
  EXPECT_NE(describe.output.find("\"protected\":true"), std::string::npos) << describe.output;
  auto unknown = RunAffinity({"features", "describe", "cohrt", "--url", url});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.output.find("no feature group 'cohrt'"), std::string::npos) << unknown.output;
  auto get = RunAffinity({"features", "get", "graph", "u1", "--url", url, "--json"});
  EXPECT_EQ(get.exit_code, 0) << get.output;
  EXPECT_NE(get.output.find("\"provenance\""), std::string::npos) << get.output;
  // Without --json: a table and an indented record, for people.
  auto table = RunAffinity({"features", "list", "--url", url});
  EXPECT_EQ(table.exit_code, 0) << table.output;
  EXPECT_EQ(table.output.rfind("group ", 0), 0u) << table.output;
  EXPECT_NE(table.output.find("viewer_activity "), std::string::npos) << table.output;
  auto record = RunAffinity({"features", "get", "graph", "u1", "--url", url});
  EXPECT_NE(record.output.find("\nprovenance\n"), std::string::npos) << record.output;
  EXPECT_EQ(RunAffinity({"features", "get", "graph", "nobody", "--url", url}).exit_code, 1);
}

TEST_F(FeaturesTest, AConfigurationThatWouldLetAProtectedFeatureRankIsRefusedAtStart) {
  for (const auto& [toml, says] : std::vector<std::pair<std::string, std::string>>{
           {"[features.cohort]\nprotected = false\n", "'cohort' is protected"},
           {"[features.popularity]\nprotected = true\n", "inputs of the blend and the learned ranker"},
           {"[features.populararity]\nttl_seconds = 60\n", "did you mean 'popularity'"}}) {
    const std::string config = dir_ / "bad.toml";
    std::ofstream(config) << toml;
    auto r = RunAffinity({"serve", "--data", dir_ / "data", "--port", "0", "--config", config}, 20);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find(says), std::string::npos) << r.output;
  }
}

std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Every section of a snapshot's arrays.bin, as bytes.
std::map<std::string, std::vector<char>> Sections(const std::string& path) {
  SectionReader r;
  EXPECT_TRUE(r.Open(path, {SectionFormat{std::string_view("AFFSNAP3", 8), true, 64}}).ok()) << path;
  std::map<std::string, std::vector<char>> out;
  for (const std::string& name : r.names()) r.Get(name, &out[name]);
  return out;
}

// Every record of one group of a snapshot's feature store.
std::map<uint32_t, FeatureRecord> Records(const std::string& snapshot_dir, const std::string& group) {
  std::map<uint32_t, FeatureRecord> out;
  auto store = OpenRocksFeatureStore(snapshot_dir + "/features", true, BatchFeatureGroups(32));
  EXPECT_TRUE(store.ok()) << store.status();
  if (!store.ok()) return out;
  EXPECT_TRUE((*store)->Scan(group, [&](const FeatureRecord& r) { out[r.entity.bits] = r; }).ok());
  return out;
}

// A backfill recomputes its group alone and carries every other part of the
// served version over bit for bit: the ANN index files, every section of
// arrays.bin but the group's, every record of the other groups. Over the
// whole log, the group's values are the ones the batch computed.
TEST_F(FeaturesTest, ABackfillLeavesEveryOtherGroupExactlyAsServed) {
  const std::string data = dir_ / "data";
  auto current = [&] { return FileBytes(data + "/snapshots/CURRENT").substr(0, 7); };
  for (const char* group_name : {"popularity", "graph"}) {
    const std::string group = group_name;
    const std::string before = current();
    auto r = RunAffinity({"backfill", "--data", data, "--group", group}, 120);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const std::string after = current();
    ASSERT_NE(after, before);
    const std::string was = data + "/snapshots/" + before, now = data + "/snapshots/" + after;
    for (const char* kind : {"user", "creator", "item"})
      for (const char* suffix : {".hnsw", ".hnsw.sum"}) {
        const std::string file = std::string("/ann_") + kind + suffix;
        ASSERT_TRUE(std::filesystem::exists(was + file)) << was + file;
        EXPECT_EQ(FileBytes(now + file), FileBytes(was + file)) << file;
        EXPECT_TRUE(std::filesystem::equivalent(now + file, was + file)) << file << ": carried over, not rebuilt";
      }
    // The group's own sections: its dense columns (and, for popularity, the lists by kind).
    auto owned = [&](const std::string& name) {
      if (group == "popularity")
        return name.find(".dense.popularity") != std::string::npos || name.find(".popular") != std::string::npos;
      return name.find(".dense.followers") != std::string::npos || name.find(".dense.following") != std::string::npos ||
             name.find(".dense.engagers") != std::string::npos;
    };
    auto old_sections = Sections(was + "/arrays.bin"), new_sections = Sections(now + "/arrays.bin");
    ASSERT_GT(old_sections.size(), 20u);
    ASSERT_EQ(old_sections.size(), new_sections.size());
    size_t carried = 0;
    for (const auto& [name, bytes] : old_sections) {
      ASSERT_TRUE(new_sections.count(name)) << name;
      // Over the whole log the recomputed group is the batch's, bit for bit, too.
      EXPECT_EQ(new_sections[name], bytes) << name << (owned(name) ? " (recomputed)" : "");
      carried += !owned(name);
    }
    EXPECT_GT(carried, 20u);
    for (const char* other : {"viewer_embedding", "entity_embedding", "popularity", "graph"}) {
      auto old_records = Records(was, other), new_records = Records(now, other);
      ASSERT_FALSE(old_records.empty()) << other;
      ASSERT_EQ(new_records.size(), old_records.size()) << other;
      for (const auto& [bits, rec] : old_records) {
        const FeatureRecord& got = new_records[bits];
        ASSERT_EQ(got.values, rec.values) << other << " " << bits;
        if (other == group) {
          EXPECT_NE(got.provenance.find("backfill of " + group), std::string::npos) << got.provenance;
        } else {
          EXPECT_EQ(got.provenance, rec.provenance) << other;
          EXPECT_EQ(got.freshness_ts, rec.freshness_ts) << other;
        }
      }
    }
  }
}

}  // namespace
}  // namespace affinity
