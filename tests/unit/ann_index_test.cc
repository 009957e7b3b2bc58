// The HNSW index adapter: search, save and load, and the checksum that
// refuses a damaged or truncated index file before hnswlib reads it.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "base/strings.h"
#include "features/ann/ann_index.h"
#include "testing/temp_dir.h"

namespace affinity {
namespace {

using testing::TempDir;

TEST(AnnIndexTest, FindsTheBestInnerProductAndSurvivesSaveLoad) {
  std::vector<float> data = {1, 0, 0, 1, 0.7f, 0.7f, -1, 0};
  auto index = AnnIndex::Build(data.data(), 4, 2, 8, 50, 2);
  ASSERT_TRUE(index.ok());
  float q[2] = {0.9f, 0.1f};
  auto hits = (*index)->Search(q, 2);
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0].first, 0u);
  TempDir dir;
  ASSERT_TRUE((*index)->Save(dir / "a.hnsw").ok());
  auto loaded = AnnIndex::Load(dir / "a.hnsw", 2);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->Search(q, 1)[0].first, 0u);
}

TEST(AnnIndexTest, TruncatedIndexFileIsRejected) {
  std::vector<float> data = {1, 0, 0, 1};
  auto index = *AnnIndex::Build(data.data(), 2, 2, 8, 50, 1);
  TempDir dir;
  ASSERT_TRUE(index->Save(dir / "a.hnsw").ok());
  std::filesystem::resize_file(dir / "a.hnsw", std::filesystem::file_size(dir / "a.hnsw") - 5);
  auto loaded = AnnIndex::Load(dir / "a.hnsw", 2);
  EXPECT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss);
}

TEST(AnnIndexTest, AnIndexWithItsChecksumAtItsEndStillLoadsAndADamagedOneIsRefused) {
  std::vector<float> data = {1, 0, 0, 1, 0.7f, 0.7f, -1, 0};
  auto index = *AnnIndex::Build(data.data(), 4, 2, 8, 50, 1);
  TempDir dir;
  ASSERT_TRUE(index->Save(dir / "a.hnsw").ok());
  EXPECT_TRUE(std::filesystem::exists(dir / "a.hnsw.sum")) << "the checksum sits beside the index";
  // The layout of indexes written before: size and CRC-32C at the end, no .sum.
  std::string body = *ReadFile(dir / "a.hnsw");
  const uint64_t size = body.size();
  const uint32_t crc = Crc32c(body.data(), body.size());
  std::string legacy = body;
  legacy.append(reinterpret_cast<const char*>(&size), 8);
  legacy.append(reinterpret_cast<const char*>(&crc), 4);
  ASSERT_TRUE(WriteFileAtomic(dir / "old.hnsw", legacy));
  float q[2] = {0.9f, 0.1f};
  auto old = AnnIndex::Load(dir / "old.hnsw", 2);
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ((*old)->Search(q, 1)[0].first, 0u);
  // One byte changed in the index: refused, not loaded.
  body[body.size() / 2] ^= 0x11;
  ASSERT_TRUE(WriteFileAtomic(dir / "a.hnsw", body));
  auto damaged = AnnIndex::Load(dir / "a.hnsw", 2);
  ASSERT_FALSE(damaged.ok());
  EXPECT_EQ(damaged.status().code(), absl::StatusCode::kDataLoss);
}

TEST(AnnIndexTest, AnIndexWhoseChecksumHoldsButWhoseLinksRunPastItsEndIsRefused) {
  std::vector<float> data(400 * 4);
  for (size_t i = 0; i < data.size(); ++i) data[i] = float((i * 7919) % 101) / 101.f - 0.5f;
  auto index = *AnnIndex::Build(data.data(), 400, 4, 4, 20, 1);  // M = 4: many upper-level link lists
  TempDir dir;
  ASSERT_TRUE(index->Save(dir / "a.hnsw").ok());
  // The file cut short with a checksum that matches what is left: only the
  // layout check stands between it and the index.
  auto cut_to = [&](std::string body, size_t bytes) {
    body.resize(bytes);
    const uint64_t size = body.size();
    const uint32_t crc = Crc32c(body.data(), body.size());
    std::string sum(12, '\0');
    std::memcpy(sum.data(), &size, 8);
    std::memcpy(sum.data() + 8, &crc, 4);
    return WriteFileAtomic(dir / "a.hnsw", body) && WriteFileAtomic(dir / "a.hnsw.sum", sum);
  };
  const std::string whole = *ReadFile(dir / "a.hnsw");
  ASSERT_TRUE(cut_to(whole, whole.size() - 3));  // into the last element's links
  auto loaded = AnnIndex::Load(dir / "a.hnsw", 4);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(std::string(loaded.status().message()).find("cut short"), std::string::npos) << loaded.status();
  ASSERT_TRUE(cut_to(whole, 40));  // a header alone
  auto header_only = AnnIndex::Load(dir / "a.hnsw", 4);
  ASSERT_FALSE(header_only.ok());
  EXPECT_EQ(header_only.status().code(), absl::StatusCode::kDataLoss);
}

TEST(AnnIndexTest, LoadingFromTheMappedFileAnswersAsHnswlibsOwnLoaderDoes) {
  constexpr int kDim = 16;
  constexpr size_t kPoints = 4000;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  std::vector<float> data(kPoints * kDim);
  for (float& x : data) x = normal(rng);
  auto index = *AnnIndex::Build(data.data(), kPoints, kDim, 6, 40, 2);  // small M: many upper-level elements
  TempDir dir;
  const std::string path = dir / "a.hnsw";
  ASSERT_TRUE(index->Save(path).ok());
  auto ours = AnnIndex::Load(path, kDim);
  ASSERT_TRUE(ours.ok()) << ours.status();
  auto theirs = AnnIndex::LoadThroughHnswlib(path, kDim);
  ASSERT_TRUE(theirs.ok()) << theirs.status();
  ASSERT_EQ((*ours)->size(), (*theirs)->size());
  (*ours)->SetEf(64);
  (*theirs)->SetEf(64);
  for (int q = 0; q < 200; ++q) {
    std::vector<float> query(kDim);
    for (float& x : query) x = normal(rng);
    const auto got = (*ours)->Search(query.data(), 10), want = (*theirs)->Search(query.data(), 10);
    ASSERT_EQ(got.size(), want.size()) << "query " << q;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].first, want[i].first) << "query " << q << " rank " << i;
      EXPECT_EQ(got[i].second, want[i].second) << "query " << q << " rank " << i;
    }
  }
  // An index of another dimension is refused by its layout, not misread.
  auto other = AnnIndex::Load(path, 8);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(std::string(other.status().message()).find("8-dimension"), std::string::npos) << other.status();
}

}  // namespace
}  // namespace affinity
