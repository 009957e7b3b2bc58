#include <gtest/gtest.h>
#include <random>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "base/section_file.h"
#include "base/strings.h"
#include "batch/als.h"
#include "candidates/viewer_embedding.h"
#include "batch/pipeline.h"
#include "features/ann/ann_index.h"
#include "features/batch_columns.h"
#include "features/feature_registry.h"
#include "features/feature_store.h"
#include "features/snapshot_manager.h"
#include "ranking/ranker_inputs.h"
#include "testing/section_files.h"
#include "testing/world.h"
#include "batch/batch_options.h"
#include "config/config.h"

namespace affinity {
namespace {

using testing::DropSections;
using testing::TempDir;
using testing::UnalignedSections;

// arrays.bin as this build writes it (features/snapshot.cc).
constexpr SectionFormat kArraysV3{std::string_view("AFFSNAP3", 8), true, 64};
using testing::World;

// The manifest of the version in `dir` as builds wrote it before manifests
// listed the version's files and their sizes: tests that rewrite arrays.bin
// the way an earlier build wrote it leave the listing out with it.
void ForgetListedFiles(const std::string& dir) {
  std::string manifest = *ReadFile(dir + "/manifest.json");
  const size_t at = manifest.find(",\"files\":{");
  ASSERT_NE(at, std::string::npos) << manifest;
  manifest.erase(at, manifest.find('}', at) + 1 - at);
  ASSERT_TRUE(WriteFileAtomic(dir + "/manifest.json", manifest));
}

// Users 0-9 engage with 8 of items 0-9, users 10-19 with 8 of items 10-19.
SparseMatrix TwoBlocks() {
  SparseMatrix m;
  m.rows = 20;
  m.cols = 20;
  m.off.push_back(0);
  for (uint32_t u = 0; u < 20; ++u) {
    uint32_t base = u < 10 ? 0 : 10;
    for (uint32_t k = 0; k < 8; ++k) {
      m.idx.push_back(base + (u + k) % 10);
      m.val.push_back(4.0f);
    }
    m.off.push_back(m.idx.size());
  }
  return m;
}

TEST(AlsTest, UnseenItemsOfTheViewersBlockOutrankTheOtherBlock) {
  SparseMatrix m = TwoBlocks();
  AlsOptions o;
  o.factors = 4;
  o.iterations = 10;
  o.threads = 2;
  AlsModel model = TrainAls(m, o);
  auto score = [&](uint32_t u, uint32_t i) {
    float s = 0;
    for (int f = 0; f < 4; ++f) s += model.user[u * 4 + f] * model.item[i * 4 + f];
    return s;
  };
  for (uint32_t u : {0u, 3u, 15u}) {
    uint32_t base = u < 10 ? 0 : 10, other = u < 10 ? 10 : 0;
    for (uint32_t unseen : {base + (u + 8) % 10, base + (u + 9) % 10})
      for (uint32_t j = 0; j < 10; ++j) EXPECT_GT(score(u, unseen), score(u, other + j)) << u << " " << unseen;
  }
}

TEST(AlsTest, FoldInOfAViewersItemsFavoursTheirBlock) {
  SparseMatrix m = TwoBlocks();
  AlsOptions o;
  o.factors = 4;
  o.iterations = 10;
  AlsModel model = TrainAls(m, o);
  // A new viewer who engaged with items 10, 11 and 12.
  const float* rows[3] = {&model.item[10 * 4], &model.item[11 * 4], &model.item[12 * 4]};
  float conf[3] = {4, 4, 4};
  float x[4];
  FoldIn(rows, conf, 3, model.gram.data(), 4, o.lambda, x);
  auto score = [&](uint32_t i) {
    float s = 0;
    for (int f = 0; f < 4; ++f) s += x[f] * model.item[i * 4 + f];
    return s;
  };
  float worst_in = 1e9, best_out = -1e9;
  for (uint32_t i = 13; i < 20; ++i) worst_in = std::min(worst_in, score(i));
  for (uint32_t i = 0; i < 10; ++i) best_out = std::max(best_out, score(i));
  EXPECT_GT(score(11), best_out);
  EXPECT_GT(worst_in, best_out - 0.5f);
}

class BatchPipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    world_.BuildSmall();
    options_.als_factors = 8;
    options_.hnsw_m = 8;
  }
  World world_;
  BatchOptions options_;
};

TEST_F(BatchPipelineTest, SnapshotRoundTripsThroughPublishAndLoad) {
  BatchReport report;
  auto snap = BuildSnapshot(*world_.store, world_.registry, options_, world_.clock.NowMillis(), &report);
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_EQ(report.events, world_.store->NextOffset());
  auto version = PublishSnapshot(world_.dir.path(), **snap, "{}", 2);
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(*version, "v000001");
  EXPECT_EQ(CurrentSnapshotVersion(world_.dir.path()), "v000001");
  auto loaded = LoadCurrentSnapshot(world_.dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const Snapshot& a = **snap;
  const Snapshot& b = **loaded;
  EXPECT_EQ(b.watermark_offset, a.watermark_offset);
  for (int k = 0; k < kNumKinds; ++k) {
    EXPECT_EQ(b.kinds[k].count, a.kinds[k].count);
    EXPECT_EQ(b.kinds[k].nb_ids, a.kinds[k].nb_ids);
    EXPECT_EQ(b.kinds[k].has_emb, a.kinds[k].has_emb);
    EXPECT_EQ(b.kinds[k].emb, a.kinds[k].emb);
    EXPECT_EQ(b.kinds[k].popular, a.kinds[k].popular);
  }
  EXPECT_EQ(b.viewer_emb, a.viewer_emb);
  EXPECT_NE(b.manifest_json.find("\"feature_groups\""), std::string::npos);
}

TEST_F(BatchPipelineTest, OldVersionsArePrunedAndCurrentMovesForward) {
  for (int i = 0; i < 3; ++i) {
    auto snap = *BuildSnapshot(*world_.store, world_.registry, options_, world_.clock.NowMillis(), nullptr);
    ASSERT_TRUE(PublishSnapshot(world_.dir.path(), *snap, "", 2).ok());
  }
  EXPECT_EQ(CurrentSnapshotVersion(world_.dir.path()), "v000003");
  EXPECT_FALSE(std::filesystem::exists(world_.dir / "snapshots/v000001"));
  EXPECT_TRUE(std::filesystem::exists(world_.dir / "snapshots/v000002"));
}

TEST_F(BatchPipelineTest, CorruptedArraysFileIsRefused) {
  auto snap = *BuildSnapshot(*world_.store, world_.registry, options_, world_.clock.NowMillis(), nullptr);
  auto version = *PublishSnapshot(world_.dir.path(), *snap, "", 2);
  std::string path = world_.dir / ("snapshots/" + version + "/arrays.bin");
  std::string bytes = *ReadFile(path);
  bytes[bytes.size() / 2] ^= 0x5A;
  ASSERT_TRUE(WriteFileAtomic(path, bytes));
  auto loaded = LoadCurrentSnapshot(world_.dir.path());
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(BatchPipelineTest, SnapshotsOfEarlierFormatsStillLoadIntoTheSameArrays) {
  auto snap = *BuildSnapshot(*world_.store, world_.registry, options_, world_.clock.NowMillis(), nullptr);
  auto version = *PublishSnapshot(world_.dir.path(), *snap, "", 2);
  std::string path = world_.dir / ("snapshots/" + version + "/arrays.bin");
  const std::string current = *ReadFile(path);
  ForgetListedFiles(world_.dir / ("snapshots/" + version));
  for (int v : {1, 2}) {
    // Version 2: no padding; version 1: no padding, checksums over the data alone.
    ASSERT_TRUE(WriteFileAtomic(path, UnalignedSections(current, "AFFSNAP" + std::to_string(v), v == 2)));
    auto loaded = LoadCurrentSnapshot(world_.dir.path());
    ASSERT_TRUE(loaded.ok()) << "version " << v << ": " << loaded.status();
    for (int k = 0; k < kNumKinds; ++k) {
      EXPECT_EQ((*loaded)->kinds[k].nb_ids, snap->kinds[k].nb_ids) << "version " << v;
      EXPECT_EQ((*loaded)->kinds[k].nb_w, snap->kinds[k].nb_w) << "version " << v;
      EXPECT_EQ((*loaded)->kinds[k].nb_sup, snap->kinds[k].nb_sup) << "version " << v;
      EXPECT_EQ((*loaded)->kinds[k].eng_users, snap->kinds[k].eng_users) << "version " << v;
    }
    EXPECT_EQ((*loaded)->user_eng, snap->user_eng) << "version " << v;
    EXPECT_EQ((*loaded)->gram, snap->gram) << "version " << v;
  }
}

TEST_F(BatchPipelineTest, ALoadedSnapshotUsesItsArraysInTheFileWithoutCopyingThem) {
  auto snap = *BuildSnapshot(*world_.store, world_.registry, options_, world_.clock.NowMillis(), nullptr);
  auto version = *PublishSnapshot(world_.dir.path(), *snap, "", 2);
  const std::string path = world_.dir / ("snapshots/" + version + "/arrays.bin");
  std::shared_ptr<const Snapshot> loaded = *LoadCurrentSnapshot(world_.dir.path());
  EXPECT_GT(loaded->load_report.mapped_bytes, 0u);
  EXPECT_EQ(loaded->load_report.copied_bytes, 0u);
  const auto& items = loaded->kind(Kind::kItem);
  ASSERT_FALSE(items.nb_ids.empty());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(items.nb_ids.data()) % 64, 0u);
  EXPECT_EQ(items.nb_ids, snap->kind(Kind::kItem).nb_ids);
  // The file can go (a newer batch prunes old versions) while the snapshot is
  // served: its arrays stay readable until the last reader lets go.
  std::filesystem::remove_all(world_.dir / ("snapshots/" + version));
  const FrozenArray<uint32_t> kept = items.nb_ids;
  loaded.reset();
  EXPECT_EQ(kept, snap->kind(Kind::kItem).nb_ids);
}

TEST_F(BatchPipelineTest, TheDenseCopyOfTheBatchGroupsHoldsWhatTheFeatureStoreRecordsSay) {
  auto snap = *BuildSnapshot(*world_.store, world_.registry, options_, world_.clock.NowMillis(), nullptr);
  auto version = *PublishSnapshot(world_.dir.path(), *snap, "", 2);
  const std::string path = world_.dir / ("snapshots/" + version + "/arrays.bin");
  std::shared_ptr<const Snapshot> mapped = *LoadCurrentSnapshot(world_.dir.path());
  EXPECT_FALSE(mapped->load_report.groups_scanned);
  // The same snapshot as an earlier build wrote it, without the dense copy:
  // the groups come from the feature store's records.
  ForgetListedFiles(world_.dir / ("snapshots/" + version));
  const int dropped =
      DropSections(path, kArraysV3, [](const std::string& name) { return name.find("dense.") != std::string::npos; });
  EXPECT_EQ(dropped, kNumKinds * 7 + 2);
  std::shared_ptr<const Snapshot> scanned = *LoadCurrentSnapshot(world_.dir.path());
  EXPECT_TRUE(scanned->load_report.groups_scanned);
  for (const Snapshot* s : {mapped.get(), scanned.get()}) {
    for (int k = 0; k < kNumKinds; ++k) {
      const KindSnapshot &a = s->kinds[k], &b = snap->kinds[k];
      EXPECT_EQ(a.emb, b.emb) << k;
      EXPECT_EQ(a.has_emb, b.has_emb) << k;
      EXPECT_EQ(a.popularity, b.popularity) << k;
      EXPECT_EQ(a.popularity_pct, b.popularity_pct) << k;
      EXPECT_EQ(a.followers, b.followers) << k;
      EXPECT_EQ(a.following, b.following) << k;
      EXPECT_EQ(a.engagers, b.engagers) << k;
    }
    EXPECT_EQ(s->viewer_has_emb, snap->viewer_has_emb);
    for (uint32_t u = 0; u < snap->kinds[0].count; ++u)
      if (snap->viewer_has_emb[u])
        for (int d = 0; d < snap->dim; ++d)
          EXPECT_EQ(s->viewer_emb[size_t(u) * snap->dim + d], snap->viewer_emb[size_t(u) * snap->dim + d]);
  }
}

TEST(BatchColumnsTest, EveryColumnBelongsToADeclaredBatchGroupAndFillsItsRecordInOrder) {
  const int dim = 8;
  const std::vector<FeatureGroup> batch = BatchFeatureGroups(dim);
  for (const BatchColumn& c : BatchColumns())
    EXPECT_NE(FindFeatureGroup(batch, c.group), nullptr) << c.name << " names no declared batch group " << c.group;
  for (const FeatureGroup& g : batch) {
    size_t next = 0;  // the value columns cover the record's values in order, once each
    for (const BatchColumn* c : BatchColumnsOf(g.name)) {
      if (c->is_flag()) continue;
      EXPECT_EQ(c->first_value, next) << g.name << "." << c->name;
      next = c->first_value + c->Width(dim);
    }
    EXPECT_EQ(next, g.components.size()) << g.name;
  }
}

TEST_F(BatchPipelineTest, EveryBatchGroupMapsToColumnsThatExistInAPublishedSnapshot) {
  auto snap = *BuildSnapshot(*world_.store, world_.registry, options_, world_.clock.NowMillis(), nullptr);
  auto version = *PublishSnapshot(world_.dir.path(), *snap, "", 2);
  SectionReader arrays;
  ASSERT_TRUE(arrays.Open(world_.dir / ("snapshots/" + version + "/arrays.bin"), {kArraysV3}).ok());
  std::shared_ptr<const Snapshot> loaded = *LoadCurrentSnapshot(world_.dir.path());
  for (const FeatureGroup& g : BatchFeatureGroups(options_.als_factors)) {
    const std::vector<const BatchColumn*> columns = BatchColumnsOf(g.name);
    ASSERT_FALSE(columns.empty()) << g.name << " has no columns";
    for (const BatchColumn* c : columns)
      for (int k = 0; k < kNumKinds; ++k) {
        if (!c->Of(k)) continue;
        EXPECT_TRUE(arrays.Has(c->Section(k))) << c->Section(k);
        const size_t want = size_t(loaded->kinds[k].count) * (c->is_flag() ? 1 : c->Width(loaded->dim));
        const size_t got = c->is_flag() ? c->Flags(*loaded, k)->size() : c->Floats(*loaded, k)->size();
        EXPECT_EQ(got, want) << c->Section(k);
      }
  }
}

TEST_F(BatchPipelineTest, AGroupsRecordReadFromTheSnapshotsColumnsIsTheFeatureStoresRecord) {
  auto snap = *BuildSnapshot(*world_.store, world_.registry, options_, world_.clock.NowMillis(), nullptr);
  auto version = *PublishSnapshot(world_.dir.path(), *snap, "", 2);
  std::shared_ptr<const Snapshot> loaded = *LoadCurrentSnapshot(world_.dir.path());
  auto store = OpenRocksFeatureStore(world_.dir / ("snapshots/" + version + "/features"), true, loaded->groups);
  ASSERT_TRUE(store.ok()) << store.status();
  int records = 0, absent = 0;
  for (const FeatureGroup& g : loaded->groups)
    for (int k = 0; k < kNumKinds; ++k)
      for (uint32_t i = 0; i < loaded->kinds[k].count; ++i) {
        const Ref r(Kind(k), i);
        auto stored = (*store)->Get(g.name, r);
        ASSERT_TRUE(stored.ok()) << stored.status();
        auto read = BatchGroupRecord(*loaded, g.name, r);
        if (read.ok() && stored->has_value()) {
          EXPECT_EQ(*read, (*stored)->values) << g.name << " " << k << ":" << i;
          ++records;
        } else if (!read.ok()) {
          EXPECT_FALSE(stored->has_value()) << g.name << " " << k << ":" << i << ": " << read.status();
          EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound);
          ++absent;
        } else {  // a value group holds no record where every value is zero
          for (float v : *read) EXPECT_EQ(v, 0.f) << g.name << " " << k << ":" << i;
        }
      }
  EXPECT_GT(records, 0);
  EXPECT_GT(absent, 0);
  auto creator = BatchGroupRecord(*loaded, kGroupViewerEmbedding, Ref(Kind::kCreator, 0));
  EXPECT_EQ(creator.status().message(), "only users have viewer embeddings");
  auto newer = BatchGroupRecord(*loaded, kGroupPopularity, Ref(Kind::kItem, loaded->kinds[2].count));
  EXPECT_EQ(newer.status().message(), "it is newer than snapshot " + version);
}

TEST_F(BatchPipelineTest, ASnapshotMissingOneDenseGroupIsRefusedNamingIt) {
  auto snap = *BuildSnapshot(*world_.store, world_.registry, options_, world_.clock.NowMillis(), nullptr);
  auto version = *PublishSnapshot(world_.dir.path(), *snap, "", 2);
  const std::string path = world_.dir / ("snapshots/" + version + "/arrays.bin");
  ForgetListedFiles(world_.dir / ("snapshots/" + version));  // as written before the listing, which would speak first
  ASSERT_EQ(DropSections(path, kArraysV3, [](const std::string& name) { return name == "item.dense.popularity"; }), 1);
  auto loaded = LoadCurrentSnapshot(world_.dir.path());
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(std::string(loaded.status().message()).find("item.dense.popularity"), std::string::npos)
      << loaded.status();
}

TEST_F(BatchPipelineTest, ADamagedSectionNameIsRefusedNotSkipped) {
  auto snap = *BuildSnapshot(*world_.store, world_.registry, options_, world_.clock.NowMillis(), nullptr);
  auto version = *PublishSnapshot(world_.dir.path(), *snap, "", 2);
  std::string path = world_.dir / ("snapshots/" + version + "/arrays.bin");
  std::string bytes = *ReadFile(path);
  const size_t at = bytes.find("item.nb_sup");
  ASSERT_NE(at, std::string::npos);
  bytes[at + 8] = 'x';  // item.nb_xup: a name no reader asks for
  ASSERT_TRUE(WriteFileAtomic(path, bytes));
  auto loaded = LoadCurrentSnapshot(world_.dir.path());
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(BatchPipelineTest, ServerKeepsThePreviousSnapshotWhenANewOneIsCorrupt) {
  auto snap = *BuildSnapshot(*world_.store, world_.registry, options_, world_.clock.NowMillis(), nullptr);
  ASSERT_TRUE(PublishSnapshot(world_.dir.path(), *snap, "", 3).ok());
  SnapshotManager manager(world_.dir.path(), 1000, 32);
  ASSERT_TRUE(manager.LoadInitial().ok());
  ASSERT_EQ(manager.Get()->version, "v000001");
  auto next = *BuildSnapshot(*world_.store, world_.registry, options_, world_.clock.NowMillis(), nullptr);
  std::string v2 = *PublishSnapshot(world_.dir.path(), *next, "", 3);
  std::string ann = world_.dir / ("snapshots/" + v2 + "/ann_item.hnsw");
  std::filesystem::resize_file(ann, std::filesystem::file_size(ann) / 2);
  auto swapped = manager.Refresh();
  EXPECT_FALSE(swapped.ok());
  EXPECT_EQ(manager.Get()->version, "v000001");
  EXPECT_NE(manager.last_error().find("ann"), std::string::npos) << manager.last_error();
  // A later good snapshot swaps in and clears the error (it used to stay set).
  auto third = *BuildSnapshot(*world_.store, world_.registry, options_, world_.clock.NowMillis(), nullptr);
  std::string v3 = *PublishSnapshot(world_.dir.path(), *third, "", 3);
  auto good = manager.Refresh();
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_TRUE(*good);
  EXPECT_EQ(manager.Get()->version, v3);
  EXPECT_EQ(manager.last_error(), "");
  EXPECT_EQ(manager.swaps(), 2u);
}

TEST_F(BatchPipelineTest, CoEngagementNeighboursStayWithinKindAndTasteGroup) {
  auto snap = *BuildSnapshot(*world_.store, world_.registry, options_, world_.clock.NowMillis(), nullptr);
  const KindSnapshot& items = snap->kind(Kind::kItem);
  Ref i0 = *world_.registry.Find("i0");
  ASSERT_GT(items.nb_off[i0.id() + 1], items.nb_off[i0.id()]);
  for (uint32_t p = items.nb_off[i0.id()]; p < items.nb_off[i0.id() + 1]; ++p) {
    std::string ext = world_.registry.ExtId(Ref(Kind::kItem, items.nb_ids[p]));
    int n = std::stoi(ext.substr(1));
    EXPECT_LT(n, 15) << ext;  // i0 is liked by even users, who only like items 0..14
  }
}

TEST_F(BatchPipelineTest, BatchLearnsOnlyFromEventsInsideTheConfiguredRetention) {
  const uint64_t fresh = world_.store->NextOffset();  // BuildSmall's events, within hours of the clock
  const int64_t now = world_.clock.NowMillis();
  std::vector<RawEvent> old;
  for (int u = 0; u < 4; ++u) old.push_back(World::Ev(absl::StrCat("u", u), "i3", "click", now - 30 * 3'600'000));
  ASSERT_TRUE(world_.Events(old).ok());
  Config config;
  config.batch.als_factors = 8;
  config.batch.hnsw_m = 8;
  config.ranker.train_in_batch = false;
  auto all = RunBatch(world_.dir.path(), config.batch, StoreOptionsFor(config, nullptr), now, nullptr);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->events, fresh + old.size());
  // A day's retention as of the run's time (not the machine's): the 30-hour-old events are left out.
  config.events.retention_hours = 24;
  auto windowed = RunBatch(world_.dir.path(), config.batch, StoreOptionsFor(config, nullptr), now, nullptr);
  ASSERT_TRUE(windowed.ok()) << windowed.status();
  EXPECT_EQ(windowed->events, fresh);
}

TEST_F(BatchPipelineTest, PopularityRanksTheMostEngagedFirst) {
  auto snap = *BuildSnapshot(*world_.store, world_.registry, options_, world_.clock.NowMillis(), nullptr);
  const KindSnapshot& users = snap->kind(Kind::kUser);
  const KindSnapshot& creators = snap->kind(Kind::kCreator);
  ASSERT_FALSE(creators.popular.empty());
  EXPECT_EQ(creators.popular[0], world_.registry.Find("c0")->id());  // every user follows c0
  EXPECT_FLOAT_EQ(creators.followers[world_.registry.Find("c0")->id()], 10.f);
  EXPECT_EQ(users.following[world_.registry.Find("u0")->id()], 3.f);  // u1, u2 and c0
}

// Three viewers' timelines: a then b then c within minutes; d two days after a.
class SessionNeighboursTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<RawEntity> ents;
    for (int u = 0; u < 3; ++u) ents.push_back({"u" + std::to_string(u), "user", "", "", ""});
    for (const char* i : {"a", "b", "c", "d"}) ents.push_back({i, "item", "", "", ""});
    world_.Entities(ents);
    const int64_t minute = 60'000, day = 86'400'000, t0 = world_.clock.NowMillis() - 3 * day;
    std::vector<RawEvent> evs;
    for (int u = 0; u < 3; ++u) {
      const std::string v = "u" + std::to_string(u);
      evs.push_back(World::Ev(v, "a", "click", t0 + u * minute));
      evs.push_back(World::Ev(v, "a", "click", t0 + u * minute + 1));  // a repeat adds nothing
      evs.push_back(World::Ev(v, "b", "click", t0 + (u + 1) * minute));
      evs.push_back(World::Ev(v, "c", "click", t0 + (u + 2) * minute));
      evs.push_back(World::Ev(v, "d", "click", t0 + 2 * day + u * minute));
    }
    ASSERT_TRUE(world_.Events(evs).ok());
    options_.als_factors = 4;
    options_.hnsw_m = 8;
  }
  // item -> session weight among `of`'s neighbours (absent: missing).
  std::map<std::string, float> Neighbours(const Snapshot& snap, const std::string& of) {
    const KindSnapshot& ks = snap.kind(Kind::kItem);
    const DenseId id = world_.registry.Find(of)->id();
    std::map<std::string, float> out;
    for (uint32_t p = ks.seq_off[id]; p < ks.seq_off[id + 1]; ++p)
      out[world_.registry.ExtId(Ref(Kind::kItem, ks.seq_ids[p]))] = ks.seq_w[p];
    return out;
  }
  World world_;
  BatchOptions options_;
};

TEST_F(SessionNeighboursTest, NearerInTheTimelineWeighsMoreAndTheGapEndsASession) {
  auto snap = BuildSnapshot(*world_.store, world_.registry, options_, world_.clock.NowMillis(), nullptr);
  ASSERT_TRUE(snap.ok()) << snap.status();
  auto a = Neighbours(**snap, "a");
  ASSERT_TRUE(a.count("b") && a.count("c"));
  EXPECT_FALSE(a.count("d"));  // two days later: another session
  // b is one step from a in every timeline, c two: 3 x 1 vs 3 x 1/2, over
  // sqrt(3 occurrences of a) x 3^0.3 (the repeated a counts once).
  const float norm = std::sqrt(3.f) * std::pow(3.f, 0.3f);
  EXPECT_NEAR(a["b"], 3.f / norm, 1e-5);
  EXPECT_NEAR(a["c"], 1.5f / norm, 1e-5);
  EXPECT_TRUE(Neighbours(**snap, "d").empty());
}

TEST_F(SessionNeighboursTest, WindowLimitsHowFarApartAPairMayBe) {
  options_.session_window = 1;
  auto snap = *BuildSnapshot(*world_.store, world_.registry, options_, world_.clock.NowMillis(), nullptr);
  auto a = Neighbours(*snap, "a");
  EXPECT_TRUE(a.count("b"));
  EXPECT_FALSE(a.count("c"));
  EXPECT_EQ(Neighbours(*snap, "b").size(), 2u);  // a before it, c after it
}

TEST_F(SessionNeighboursTest, SurviveSnapshotPublishAndLoad) {
  auto snap = *BuildSnapshot(*world_.store, world_.registry, options_, world_.clock.NowMillis(), nullptr);
  TempDir dir;
  ASSERT_TRUE(PublishSnapshot(dir.path(), *snap, "", 2).ok());
  auto loaded = LoadCurrentSnapshot(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const KindSnapshot &x = snap->kind(Kind::kItem), &y = (*loaded)->kind(Kind::kItem);
  EXPECT_EQ(y.seq_off, x.seq_off);
  EXPECT_EQ(y.seq_ids, x.seq_ids);
  EXPECT_EQ(y.seq_w, x.seq_w);
}

TEST_F(SessionNeighboursTest, NoneAreBuiltWhenSwitchedOff) {
  options_.session_neighbors = 0;
  auto snap = *BuildSnapshot(*world_.store, world_.registry, options_, world_.clock.NowMillis(), nullptr);
  EXPECT_TRUE(snap->kind(Kind::kItem).seq_off.empty());
}

// Three viewers engage a then b; one viewer engages a then e, twice.
class MinimumSupportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<RawEntity> ents;
    for (int u = 0; u < 4; ++u) ents.push_back({"u" + std::to_string(u), "user", "", "", ""});
    for (const char* i : {"a", "b", "e"}) ents.push_back({i, "item", "", "", ""});
    world_.Entities(ents);
    const int64_t minute = 60'000, t0 = world_.clock.NowMillis() - 86'400'000;
    std::vector<RawEvent> evs;
    for (int u = 0; u < 3; ++u) {
      evs.push_back(World::Ev("u" + std::to_string(u), "a", "click", t0 + u * minute));
      evs.push_back(World::Ev("u" + std::to_string(u), "b", "click", t0 + u * minute + 1));
    }
    for (int r = 0; r < 2; ++r) {
      evs.push_back(World::Ev("u3", "a", "click", t0 + 10 * minute + r * 3));
      evs.push_back(World::Ev("u3", "e", "click", t0 + 10 * minute + r * 3 + 1));
    }
    ASSERT_TRUE(world_.Events(evs).ok());
    options_.als_factors = 4;
    options_.hnsw_m = 8;
  }
  // The co-engagement and the session neighbours of item a.
  std::pair<std::set<std::string>, std::set<std::string>> NeighboursOfA(int min_support) {
    options_.coeng_min_support = min_support;
    auto snap = BuildSnapshot(*world_.store, world_.registry, options_, world_.clock.NowMillis(), nullptr);
    EXPECT_TRUE(snap.ok()) << snap.status();
    const KindSnapshot& ks = (*snap)->kind(Kind::kItem);
    const DenseId a = world_.registry.Find("a")->id();
    std::set<std::string> co, seq;
    for (uint32_t p = ks.nb_off[a]; p < ks.nb_off[a + 1]; ++p)
      co.insert(world_.registry.ExtId(Ref(Kind::kItem, ks.nb_ids[p])));
    for (uint32_t p = ks.seq_off[a]; p < ks.seq_off[a + 1]; ++p)
      seq.insert(world_.registry.ExtId(Ref(Kind::kItem, ks.seq_ids[p])));
    return {co, seq};
  }
  World world_;
  BatchOptions options_;
};

TEST_F(MinimumSupportTest, OneEngagerMakesAPairSimilarOnlyWhenTheSupportIsOne) {
  auto [co, seq] = NeighboursOfA(1);
  EXPECT_EQ(co, (std::set<std::string>{"b", "e"}));
  EXPECT_EQ(seq, (std::set<std::string>{"b", "e"}));
}

TEST_F(MinimumSupportTest, EachNeighbourKeepsHowManyDistinctViewersLinkIt) {
  auto snap = BuildSnapshot(*world_.store, world_.registry, options_, world_.clock.NowMillis(), nullptr);
  ASSERT_TRUE(snap.ok()) << snap.status();
  const KindSnapshot& ks = (*snap)->kind(Kind::kItem);
  ASSERT_EQ(ks.nb_sup.size(), ks.nb_ids.size());
  const DenseId a = world_.registry.Find("a")->id();
  std::map<std::string, int> support;
  for (uint32_t p = ks.nb_off[a]; p < ks.nb_off[a + 1]; ++p)
    support[world_.registry.ExtId(Ref(Kind::kItem, ks.nb_ids[p]))] = ks.nb_sup[p];
  EXPECT_EQ(support, (std::map<std::string, int>{{"b", 3}, {"e", 1}}));
}

TEST_F(MinimumSupportTest, PairsBelowTheSupportAreLeftOutHoweverOftenTheirEngagerRepeatsThem) {
  auto [co, seq] = NeighboursOfA(2);  // u3 saw a and e together twice: still one viewer
  EXPECT_EQ(co, (std::set<std::string>{"b"}));
  EXPECT_EQ(seq, (std::set<std::string>{"b"}));
  auto [co3, seq3] = NeighboursOfA(3);
  EXPECT_EQ(co3, (std::set<std::string>{"b"}));
  EXPECT_TRUE(NeighboursOfA(4).first.empty());
}

}  // namespace
}  // namespace affinity
