// The declared feature groups (what is protected, TTL settings) and the
// RocksDB feature store a snapshot keeps them in.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "features/feature_registry.h"
#include "features/feature_store.h"
#include "ranking/ranker_inputs.h"
#include "testing/temp_dir.h"

namespace affinity {
namespace {

using testing::TempDir;

TEST(FeatureRegistryTest, TheCohortIsProtectedAndNoRankerInputIsAProtectedFeature) {
  const auto groups = DeclaredFeatureGroups(8);
  const FeatureGroup* cohort = FindFeatureGroup(groups, kGroupCohort);
  ASSERT_NE(cohort, nullptr);
  EXPECT_TRUE(cohort->is_protected);
  for (const auto& g : groups) EXPECT_EQ(g.is_protected, g.name == kGroupCohort) << g.name;
  EXPECT_TRUE(CheckNoProtectedInputs(RankerInputNames(), groups).ok());
  std::vector<std::string> with_cohort = RankerInputNames();
  with_cohort.push_back("cohort");
  const absl::Status refused = CheckNoProtectedInputs(with_cohort, groups);
  EXPECT_FALSE(refused.ok());
  EXPECT_NE(std::string(refused.message()).find("input 'cohort' is the protected feature"), std::string::npos)
      << refused.message();
  // A snapshot holds only the batch groups.
  for (const auto& g : BatchFeatureGroups(8)) EXPECT_EQ(g.source, FeatureSource::kBatch) << g.name;
}

TEST(FeatureRegistryTest, SettingsChangeTtlsButNeverWhatIsProtected) {
  auto groups = DeclaredFeatureGroups(8);
  ASSERT_TRUE(ApplyFeatureSettings({{"popularity", {3600, -1}}}, &groups).ok());
  EXPECT_EQ(FindFeatureGroup(groups, kGroupPopularity)->ttl_seconds, 3600);
  EXPECT_FALSE(ApplyFeatureSettings({{"cohort", {-1, 0}}}, &groups).ok());
  EXPECT_FALSE(ApplyFeatureSettings({{"graph", {-1, 1}}}, &groups).ok());
  const absl::Status unknown = ApplyFeatureSettings({{"grph", {60, -1}}}, &groups);
  EXPECT_NE(std::string(unknown.message()).find("did you mean 'graph'?"), std::string::npos) << unknown.message();
}

TEST(FeatureStoreTest, RefusesUndeclaredGroupsAndWrongWidths) {
  TempDir dir;
  auto store = *OpenRocksFeatureStore(dir / "f", false, DeclaredFeatureGroups(4));
  EXPECT_FALSE(store->Put("made_up", {{Ref(Kind::kItem, 1), {1}, 0, "x"}}).ok());
  EXPECT_FALSE(store->Put(kGroupPopularity, {{Ref(Kind::kItem, 1), {1, 2, 3}, 0, "x"}}).ok());
  ASSERT_TRUE(store->Put(kGroupPopularity, {{Ref(Kind::kItem, 1), {5, 0.5f}, 77, "batch/popularity@v1"}}).ok());
  auto rec = store->Get(kGroupPopularity, Ref(Kind::kItem, 1));
  ASSERT_TRUE(rec.ok() && rec->has_value());
  EXPECT_EQ((*rec)->freshness_ts, 77);
  EXPECT_EQ((*rec)->provenance, "batch/popularity@v1");
  EXPECT_FLOAT_EQ((*rec)->values[0], 5);
}

TEST(FeatureStoreTest, SealedStoreReopensReadOnlyWithEveryRecordAndNoLogToReplay) {
  TempDir dir;
  {
    auto store = *OpenRocksFeatureStore(dir / "f", false, DeclaredFeatureGroups(4));
    std::vector<FeatureRecord> recs;
    for (uint32_t i = 0; i < 5000; ++i) recs.push_back({Ref(Kind::kItem, i), {float(i), 0.5f}, 77, "batch@v1"});
    ASSERT_TRUE(store->Put(kGroupPopularity, recs).ok());
    ASSERT_TRUE(store->Seal().ok());
  }
  uintmax_t log_bytes = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir / "f"))
    if (e.path().extension() == ".log") log_bytes += e.file_size();
  EXPECT_EQ(log_bytes, 0u) << "a sealed store keeps its records in sorted files only";
  auto store = *OpenRocksFeatureStore(dir / "f", true, DeclaredFeatureGroups(4));
  uint32_t n = 0;
  bool in_order = true;
  ASSERT_TRUE(store->Scan(kGroupPopularity, [&](const FeatureRecord& r) {
                     in_order = in_order && r.entity.id() == n && r.values[0] == float(n);
                     ++n;
                   }).ok());
  EXPECT_EQ(n, 5000u);
  EXPECT_TRUE(in_order);
}

}  // namespace
}  // namespace affinity
