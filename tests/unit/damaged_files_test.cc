// Damaged files never serve silently: a snapshot version or a model whose
// files fail verification at load is refused, the newest version that
// verifies serves instead, and the refusal says what, why and what serves.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "base/strings.h"
#include "batch/pipeline.h"
#include "features/snapshot_manager.h"
#include "models/model_checksum.h"
#include "models/model_registry.h"
#include "models/model_watcher.h"
#include "testing/section_files.h"
#include "testing/temp_dir.h"
#include "testing/tiny_model.h"
#include "testing/world.h"
#include "batch/batch_options.h"

namespace affinity {
namespace {

namespace fs = std::filesystem;
using testing::TinyModel;

constexpr SectionFormat kArraysV3{std::string_view("AFFSNAP3", 8), true, 64};

void FlipBit(const std::string& path, size_t at, int bit) {
  std::string bytes = *ReadFile(path);
  ASSERT_LT(at, bytes.size());
  bytes[at] = char(bytes[at] ^ (1 << bit));
  ASSERT_TRUE(WriteFileAtomic(path, bytes));
}

bool Has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

class SnapshotFallbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    world_.BuildSmall();
    options_.als_factors = 8;
    options_.hnsw_m = 8;
  }
  // Publishes `n` versions (all kept) and returns the newest's directory.
  std::string Publish(int n) {
    std::string version;
    for (int i = 0; i < n; ++i) {
      auto snap = BuildSnapshot(*world_.store, world_.registry, options_, world_.clock.NowMillis(), nullptr);
      EXPECT_TRUE(snap.ok()) << snap.status();
      version = *PublishSnapshot(world_.dir.path(), **snap, "", 5);
    }
    return Dir(version);
  }
  std::string Dir(const std::string& version) { return world_.dir / ("snapshots/" + version); }
  // The choice a start makes: serving `want`, refusing the newest with a reason containing `why`.
  void ExpectFallback(const std::string& want, const std::string& refused, const std::string& why) {
    SnapshotChoice c = LoadNewestVerifiedSnapshot(world_.dir.path());
    ASSERT_NE(c.snapshot, nullptr) << (c.refused.empty() ? "" : c.refused.front().reason);
    EXPECT_EQ(c.snapshot->version, want);
    ASSERT_EQ(c.refused.size(), 1u);
    EXPECT_EQ(c.refused[0].kind, RefusedKind::kSnapshot);
    EXPECT_EQ(c.refused[0].version, refused);
    EXPECT_EQ(c.refused[0].serving, want);
    EXPECT_TRUE(Has(c.refused[0].reason, why)) << c.refused[0].reason;
  }
  testing::World world_;
  BatchOptions options_;
};

TEST_F(SnapshotFallbackTest, AnUndamagedNewestVersionServesAndNothingIsRefused) {
  Publish(2);
  SnapshotChoice c = LoadNewestVerifiedSnapshot(world_.dir.path());
  ASSERT_NE(c.snapshot, nullptr);
  EXPECT_EQ(c.snapshot->version, "v000002");
  EXPECT_TRUE(c.refused.empty());
}

TEST_F(SnapshotFallbackTest, AFlippedByteInTheNewestArraysFileServesTheOlderVersionNamingTheSection) {
  const std::string dir = Publish(2);
  std::string bytes = *ReadFile(dir + "/arrays.bin");
  const size_t at = bytes.find("item.dense.emb");  // its data starts within 64 bytes of its name
  ASSERT_NE(at, std::string::npos);
  bytes[at + 200] = char(bytes[at + 200] ^ 0xFF);
  ASSERT_TRUE(WriteFileAtomic(dir + "/arrays.bin", bytes));
  ExpectFallback("v000001", "v000002", "section item.dense.emb of " + dir + "/arrays.bin failed its checksum");
}

TEST_F(SnapshotFallbackTest, OneFlippedBitInTheNewestArraysFileServesTheOlderVersion) {
  const std::string dir = Publish(2);
  FlipBit(dir + "/arrays.bin", fs::file_size(dir + "/arrays.bin") / 3, 0);
  ExpectFallback("v000001", "v000002", "failed its checksum");
}

TEST_F(SnapshotFallbackTest, ATruncatedArraysFileServesTheOlderVersion) {
  const std::string dir = Publish(2);
  fs::resize_file(dir + "/arrays.bin", fs::file_size(dir + "/arrays.bin") - 100);
  ExpectFallback("v000001", "v000002", "arrays.bin");
  ExpectFallback("v000001", "v000002", "truncated");
}

TEST_F(SnapshotFallbackTest, AnArraysFileCutAtASectionsEndIsRefusedThoughEverySectionLeftVerifies) {
  const std::string dir = Publish(2);
  // Every section left holds its checksum: only the manifest's listing of the
  // file's size tells that part of it is gone.
  ASSERT_EQ(testing::DropSections(dir + "/arrays.bin", kArraysV3, [](const std::string& n) { return n == "gram"; }), 1);
  ExpectFallback("v000001", "v000002", "its manifest says");
}

TEST_F(SnapshotFallbackTest, AFlippedBitInTheNewestAnnIndexServesTheOlderVersionNamingTheFile) {
  const std::string dir = Publish(2);
  ASSERT_TRUE(fs::exists(dir + "/ann_item.hnsw"));
  FlipBit(dir + "/ann_item.hnsw", fs::file_size(dir + "/ann_item.hnsw") / 2, 3);
  ExpectFallback("v000001", "v000002", "ann_item.hnsw failed its checksum");
}

TEST_F(SnapshotFallbackTest, ADeletedAnnIndexServesTheOlderVersionNamingTheFile) {
  const std::string dir = Publish(2);
  ASSERT_TRUE(fs::remove(dir + "/ann_item.hnsw"));
  ExpectFallback("v000001", "v000002", "ann_item.hnsw is missing");
}

TEST_F(SnapshotFallbackTest, CurrentNamingAMissingVersionServesTheNewestKeptOne) {
  Publish(2);
  ASSERT_TRUE(WriteFileAtomic(world_.dir / "snapshots/CURRENT", "v000009\n"));
  ExpectFallback("v000002", "v000009", "CURRENT names v000009, which is not on disk");
}

TEST_F(SnapshotFallbackTest, ARefusalIsStampedWithTheClockItIsGiven) {
  Publish(2);
  ASSERT_TRUE(WriteFileAtomic(world_.dir / "snapshots/CURRENT", "v000009\n"));
  ManualClock clock(42'000);
  SnapshotChoice c = LoadNewestVerifiedSnapshot(world_.dir.path(), {}, &clock);
  ASSERT_EQ(c.refused.size(), 1u);
  EXPECT_EQ(c.refused[0].since_ms, 42'000);
  SnapshotManager manager(world_.dir.path(), 10, 50, {}, &clock);
  clock.Advance(1'000);
  EXPECT_FALSE(manager.LoadInitial().ok());
  ASSERT_EQ(manager.refused().size(), 1u);
  EXPECT_EQ(manager.refused()[0].since_ms, 43'000);
}

TEST_F(SnapshotFallbackTest, EveryDamagedVersionIsRefusedAndTheNewestThatVerifiesServes) {
  Publish(3);
  FlipBit(Dir("v000003") + "/arrays.bin", 200, 1);
  ASSERT_TRUE(fs::remove(Dir("v000002") + "/arrays.bin"));
  SnapshotChoice c = LoadNewestVerifiedSnapshot(world_.dir.path());
  ASSERT_NE(c.snapshot, nullptr);
  EXPECT_EQ(c.snapshot->version, "v000001");
  ASSERT_EQ(c.refused.size(), 2u);
  EXPECT_EQ(c.refused[0].version, "v000003");
  EXPECT_EQ(c.refused[1].version, "v000002");
  EXPECT_TRUE(Has(c.refused[1].reason, "arrays.bin is missing")) << c.refused[1].reason;
}

TEST_F(SnapshotFallbackTest, WhenNoVersionVerifiesNoneServesAndEachIsRefused) {
  Publish(2);
  FlipBit(Dir("v000002") + "/arrays.bin", 300, 2);
  FlipBit(Dir("v000001") + "/arrays.bin", 300, 2);
  SnapshotChoice c = LoadNewestVerifiedSnapshot(world_.dir.path());
  EXPECT_EQ(c.snapshot, nullptr);
  ASSERT_EQ(c.refused.size(), 2u);
  EXPECT_EQ(c.refused[0].serving, "");
}

TEST_F(SnapshotFallbackTest, AServerStartingOnADamagedNewestVersionServesTheOlderOneAndSaysSo) {
  const std::string dir = Publish(2);
  FlipBit(dir + "/arrays.bin", fs::file_size(dir + "/arrays.bin") / 2, 5);
  SnapshotManager manager(world_.dir.path(), 1000, 32);
  absl::Status initial = manager.LoadInitial();
  EXPECT_EQ(initial.code(), absl::StatusCode::kDataLoss);
  ASSERT_NE(manager.Get(), nullptr);
  EXPECT_EQ(manager.Get()->version, "v000001");
  ASSERT_EQ(manager.refused().size(), 1u);
  EXPECT_EQ(manager.refused()[0].version, "v000002");
  EXPECT_EQ(manager.refused()[0].serving, "v000001");
  // The same damaged files are not taken for new ones on the next look.
  EXPECT_FALSE(manager.Refresh().ok());
  EXPECT_EQ(manager.Get()->version, "v000001");
  EXPECT_EQ(manager.refused().size(), 1u);
  EXPECT_TRUE(Has(manager.last_error(), "v000002 refused")) << manager.last_error();
}

TEST_F(SnapshotFallbackTest, ADamagedVersionPublishedWhileServingIsRefusedAndTheServedOneStays) {
  Publish(1);
  SnapshotManager manager(world_.dir.path(), 1000, 32);
  ASSERT_TRUE(manager.LoadInitial().ok());
  ASSERT_EQ(manager.Get()->version, "v000001");
  const std::string dir = Publish(1);
  FlipBit(dir + "/arrays.bin", fs::file_size(dir + "/arrays.bin") / 2, 7);
  EXPECT_FALSE(manager.Refresh().ok());
  EXPECT_EQ(manager.Get()->version, "v000001");
  ASSERT_EQ(manager.refused().size(), 1u);
  EXPECT_EQ(manager.refused()[0].version, "v000002");
  EXPECT_EQ(manager.refused()[0].serving, "v000001");
  // The next batch's good version swaps in and ends the refusal.
  Publish(1);
  auto swapped = manager.Refresh();
  ASSERT_TRUE(swapped.ok()) << swapped.status();
  EXPECT_TRUE(*swapped);
  EXPECT_EQ(manager.Get()->version, "v000003");
  EXPECT_TRUE(manager.refused().empty());
}

TEST_F(SnapshotFallbackTest, ARefusedVersionWhoseFilesAreRestoredServesWithoutARestart) {
  const std::string dir = Publish(2);
  const std::string good = *ReadFile(dir + "/arrays.bin");
  FlipBit(dir + "/arrays.bin", good.size() / 2, 4);
  SnapshotManager manager(world_.dir.path(), 1000, 32);
  EXPECT_FALSE(manager.LoadInitial().ok());
  ASSERT_EQ(manager.Get()->version, "v000001");
  ASSERT_TRUE(WriteFileAtomic(dir + "/arrays.bin", good));  // a new file: a new fingerprint
  auto swapped = manager.Refresh();
  ASSERT_TRUE(swapped.ok()) << swapped.status();
  EXPECT_EQ(manager.Get()->version, "v000002");
  EXPECT_TRUE(manager.refused().empty());
}

// Models.

ModelVersion Meta() {
  ModelVersion v;
  v.source = "test";
  v.ndcg = 0.3;
  v.blend_ndcg = 0.2;
  return v;
}

// One bit of the first digit in model.json: a threshold or a weight that
// still parses (the damage that used to serve wrong scores without a word).
void FlipADigit(const std::string& path) {
  std::string bytes = *ReadFile(path);
  const size_t at = bytes.find_first_of("01", bytes.find("split_conditions"));
  ASSERT_NE(at, std::string::npos);
  bytes[at] = char(bytes[at] ^ 0x08);  // '0' -> '8', '1' -> '9': one bit, and the file still parses
  ASSERT_TRUE(WriteFileAtomic(path, bytes));
}

TEST(ModelChecksumTest, Sha256OfAFileIsTheStandardDigest) {
  testing::TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir / "abc", "abc"));
  EXPECT_EQ(*Sha256FileHex(dir / "abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256FileHex(dir / "absent").status().code(), absl::StatusCode::kNotFound);
}

TEST(ModelChecksumTest, RegisteringRecordsTheSha256OfEachModelFile) {
  testing::TempDir dir;
  ModelRegistry reg(dir.path());
  ASSERT_TRUE(reg.Register(*TinyModel(1), Meta()).ok());
  auto st = *reg.Read();
  const ModelVersion* v = st.Find("m000001");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->checksummed, ChecksumOrigin::kRegistered);
  ASSERT_EQ(v->checksums.size(), 2u);
  EXPECT_EQ(v->checksums.at("model.json"), *Sha256FileHex(reg.dir() + "/m000001/model.json"));
  EXPECT_EQ(v->checksums.at("ranker.json"), *Sha256FileHex(reg.dir() + "/m000001/ranker.json"));
}

TEST(ModelChecksumTest, AModelFileWithOneBitFlippedIsRefusedNamingTheFile) {
  testing::TempDir dir;
  ModelRegistry reg(dir.path());
  ASSERT_TRUE(reg.Register(*TinyModel(1), Meta()).ok());
  ASSERT_TRUE(reg.Load("m000001").ok());
  FlipADigit(reg.dir() + "/m000001/model.json");
  ASSERT_TRUE(LearnedRanker::Load(reg.dir() + "/m000001").ok()) << "the damaged file still parses";
  auto m = reg.Load("m000001");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(Has(std::string(m.status().message()), "model.json does not match its checksum")) << m.status();
}

TEST(ModelChecksumTest, AnEntryWrittenBeforeChecksumsLoadsUnverifiedOnceAndALaterChangeIsRefused) {
  testing::TempDir dir;
  ModelRegistry reg(dir.path());
  ASSERT_TRUE(reg.Register(*TinyModel(1), Meta()).ok());
  RegistryState old = *reg.Read();
  old.versions[0].checksums.clear();
  old.versions[0].checksummed = ChecksumOrigin::kNone;
  ASSERT_TRUE(WriteFileAtomic(reg.dir() + "/registry.json", RegistryJson(old)));
  ASSERT_TRUE(reg.Load("m000001").ok());
  const RegistryState now = *reg.Read();
  const ModelVersion* v = now.Find("m000001");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->checksummed, ChecksumOrigin::kFirstLoad);
  EXPECT_EQ(v->checksums.size(), 2u);
  FlipADigit(reg.dir() + "/m000001/model.json");
  EXPECT_EQ(reg.Load("m000001").status().code(), absl::StatusCode::kDataLoss);
}

class ModelRefusalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 1; i <= 2; ++i) ASSERT_TRUE(reg_.Register(*TinyModel(i), Meta()).ok());
    ASSERT_TRUE(reg_.Promote("m000001", 0, true).ok());
    ASSERT_TRUE(reg_.Promote("m000002", 0, true).ok());
  }
  std::unique_ptr<ModelWatcher> Watcher() {
    return std::make_unique<ModelWatcher>(dir_.path(), 10, [this](std::shared_ptr<const LearnedRanker> m) {
      installed_ = m ? m->version() : "blend";
    });
  }
  testing::TempDir dir_;
  ModelRegistry reg_{dir_.path()};
  std::string installed_ = "nothing";
};

TEST_F(ModelRefusalTest, AtStartADamagedCurrentModelIsRefusedAndThePreviousOneThatVerifiesServes) {
  FlipADigit(reg_.dir() + "/m000002/model.json");
  auto watcher = Watcher();
  EXPECT_EQ(watcher->Refresh().status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(installed_, "lambdamart-m000001");
  EXPECT_EQ(watcher->current(), "m000001");
  auto refused = watcher->refused();
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].kind, RefusedKind::kModel);
  EXPECT_EQ(refused[0].version, "m000002");
  EXPECT_EQ(refused[0].serving, "m000001");
  EXPECT_TRUE(Has(refused[0].reason, "model.json")) << refused[0].reason;
}

TEST_F(ModelRefusalTest, AtStartWithNoModelThatVerifiesTheBlendRanks) {
  FlipADigit(reg_.dir() + "/m000002/model.json");
  FlipADigit(reg_.dir() + "/m000001/model.json");
  auto watcher = Watcher();
  EXPECT_FALSE(watcher->Refresh().ok());
  EXPECT_EQ(installed_, "blend");
  EXPECT_EQ(watcher->current(), "");
  EXPECT_EQ(watcher->refused().size(), 2u);
}

TEST_F(ModelRefusalTest, ADamagedModelPromotedWhileServingIsRefusedAndTheServedOneStaysUntilItIsRestored) {
  ASSERT_TRUE(reg_.Promote("m000001", 0, true).ok());
  auto watcher = Watcher();
  ASSERT_TRUE(*watcher->Refresh());
  ASSERT_EQ(installed_, "lambdamart-m000001");
  const std::string good = *ReadFile(reg_.dir() + "/m000002/model.json");
  FlipADigit(reg_.dir() + "/m000002/model.json");
  ASSERT_TRUE(reg_.Promote("m000002", 0, true).ok());
  EXPECT_FALSE(watcher->Refresh().ok());
  EXPECT_EQ(installed_, "lambdamart-m000001");
  EXPECT_EQ(watcher->current(), "m000001");
  ASSERT_EQ(watcher->refused().size(), 1u);
  EXPECT_EQ(watcher->refused()[0].serving, "m000001");
  ASSERT_TRUE(WriteFileAtomic(reg_.dir() + "/m000002/model.json", good));
  auto swapped = watcher->Refresh();
  ASSERT_TRUE(swapped.ok()) << swapped.status();
  EXPECT_EQ(installed_, "lambdamart-m000002");
  EXPECT_TRUE(watcher->refused().empty());
}

TEST_F(ModelRefusalTest, AnExperimentArmsRefusedModelIsReportedBesideTheCurrentOnes) {
  auto watcher = Watcher();
  ASSERT_TRUE(*watcher->Refresh());
  EXPECT_TRUE(watcher->refused().empty());
  watcher->NoteArmRefusal("m000001", "model m000001: model.json does not match its checksum");
  ASSERT_EQ(watcher->refused().size(), 1u);
  EXPECT_TRUE(Has(watcher->refused()[0].reason, "experiment arm")) << watcher->refused()[0].reason;
}

}  // namespace
}  // namespace affinity
