#include "features/ann/ann_index.h"

// hnswlib 0.6.2's SSE prefetch in searchBaseLayer reads one link past the end of
// a neighbour list (a benign over-read that AddressSanitizer reports). Sanitizer
// builds use its plain distance code, which has no prefetch.
#ifdef AFFINITY_SANITIZE
#define NO_MANUAL_VECTORIZATION
#endif
#include <hnswlib/hnswlib.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include <unistd.h>

#include "base/status.h"
#include "base/strings.h"

namespace affinity {

struct AnnIndex::Impl {
  explicit Impl(int dim) : space(size_t(dim)) {}
  hnswlib::InnerProductSpace space;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> index;
};

AnnIndex::AnnIndex(std::unique_ptr<Impl> impl, int dim) : impl_(std::move(impl)), dim_(dim) {}
AnnIndex::~AnnIndex() = default;

absl::StatusOr<std::unique_ptr<AnnIndex>> AnnIndex::Build(const float* data, size_t n, int dim, int m,
                                                          int ef_construction, int threads) {
  auto impl = std::make_unique<Impl>(dim);
  try {
    impl->index = std::make_unique<hnswlib::HierarchicalNSW<float>>(&impl->space, std::max<size_t>(n, 1),
                                                                     size_t(m), size_t(ef_construction), 42);
    if (n > 0) impl->index->addPoint(data, 0);  // the entry point first, single-threaded
    std::atomic<size_t> next{1};
    std::atomic<bool> failed{false};
    std::vector<std::thread> pool;
    for (int t = 0; t < std::max(1, threads); ++t) {
      pool.emplace_back([&] {
        try {
          for (size_t i = next++; i < n && !failed; i = next++) impl->index->addPoint(data + i * size_t(dim), i);
        } catch (const std::exception&) {
          failed = true;
        }
      });
    }
    for (auto& th : pool) th.join();
    if (failed) return absl::InternalError("ann: adding points failed");
  } catch (const std::exception& e) {
    return absl::InternalError(std::string("ann: build failed: ") + e.what());
  }
  return std::unique_ptr<AnnIndex>(new AnnIndex(std::move(impl), dim));
}

// Since checksums moved beside the index: "<path>.sum" holds its size (u64)
// and CRC-32C (u32), and <path> is hnswlib's own file, which it loads in place.
// Indexes written before carry the two at their end instead and are loaded
// from a scratch copy without them.
absl::Status AnnIndex::Save(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  try {
    impl_->index->saveIndex(tmp);
  } catch (const std::exception& e) {
    return absl::InternalError(std::string("ann: save failed: ") + e.what());
  }
  uint64_t size = 0;
  auto crc = FileCrc32c(tmp, &size);
  if (!crc.ok() || size == 0) return absl::InternalError("ann: could not read back " + tmp);
  if (!SyncFile(tmp) || std::rename(tmp.c_str(), path.c_str()) != 0)
    return absl::InternalError("ann: cannot write " + path);
  std::string sum(12, '\0');
  std::memcpy(sum.data(), &size, 8);
  std::memcpy(sum.data() + 8, &*crc, 4);
  if (!WriteFileAtomic(path + ".sum", sum)) return absl::InternalError("ann: cannot write " + path + ".sum");
  return absl::OkStatus();
}

namespace {
absl::StatusOr<std::unique_ptr<hnswlib::HierarchicalNSW<float>>> LoadHnsw(hnswlib::SpaceInterface<float>* space,
                                                                          const std::string& file,
                                                                          const std::string& path) {
  try {
    return std::make_unique<hnswlib::HierarchicalNSW<float>>(space, file);
  } catch (const std::exception& e) {
    return absl::DataLossError(std::string("ann: cannot load ") + path + ": " + e.what());
  }
}
}  // namespace

absl::StatusOr<std::unique_ptr<AnnIndex>> AnnIndex::Load(const std::string& path, int dim) {
  auto impl = std::make_unique<Impl>(dim);
  if (auto sum = ReadFile(path + ".sum")) {
    uint64_t want_size = 0, size = 0;
    uint32_t want_crc = 0;
    if (sum->size() != 12) return absl::DataLossError("ann: " + path + ".sum is damaged");
    std::memcpy(&want_size, sum->data(), 8);
    std::memcpy(&want_crc, sum->data() + 8, 4);
    auto crc = FileCrc32c(path, &size);
    if (!crc.ok()) return absl::NotFoundError("ann: cannot open " + path);
    if (size != want_size || *crc != want_crc) return absl::DataLossError("ann: " + path + " failed its checksum");
    AFF_ASSIGN_OR_RETURN(impl->index, LoadHnsw(&impl->space, path, path));
    return std::unique_ptr<AnnIndex>(new AnnIndex(std::move(impl), dim));
  }
  auto bytes = ReadFile(path);
  if (!bytes) return absl::NotFoundError("ann: cannot open " + path);
  if (bytes->size() < 12) return absl::DataLossError("ann: " + path + " is truncated");
  uint64_t size;
  uint32_t crc;
  std::memcpy(&size, bytes->data() + bytes->size() - 12, 8);
  std::memcpy(&crc, bytes->data() + bytes->size() - 4, 4);
  if (size != bytes->size() - 12 || Crc32c(bytes->data(), size) != crc)
    return absl::DataLossError("ann: " + path + " failed its checksum");
  // hnswlib loads from a path: hand it the verified body, staged in the temp dir
  // under a name of this process and call (snapshot dirs are shared and immutable).
  static std::atomic<uint64_t> staged{0};
  std::string body_path = (std::filesystem::temp_directory_path() /
                           ("affinity-ann-" + std::to_string(::getpid()) + "-" + std::to_string(staged++)))
                              .string();
  {  // a scratch copy, removed once loaded: no fsync, no rename
    std::ofstream out(body_path, std::ios::binary | std::ios::trunc);
    out.write(bytes->data(), std::streamsize(size));
    if (!out) {
      std::filesystem::remove(body_path);
      return absl::InternalError("ann: cannot stage " + body_path);
    }
  }
  bytes.reset();
  auto loaded = LoadHnsw(&impl->space, body_path, path);
  std::filesystem::remove(body_path);
  if (!loaded.ok()) return loaded.status();
  impl->index = *std::move(loaded);
  return std::unique_ptr<AnnIndex>(new AnnIndex(std::move(impl), dim));
}

std::vector<std::pair<uint32_t, float>> AnnIndex::Search(const float* query, size_t k) const {
  std::vector<std::pair<uint32_t, float>> out;
  if (!impl_->index || impl_->index->cur_element_count == 0 || k == 0) return out;
  try {
    auto pq = impl_->index->searchKnn(query, std::min(k, size_t(impl_->index->cur_element_count)));
    out.reserve(pq.size());
    while (!pq.empty()) {
      // InnerProductSpace distance is 1 - <a,b>.
      out.emplace_back(uint32_t(pq.top().second), 1.0f - pq.top().first);
      pq.pop();
    }
  } catch (const std::exception&) {
    out.clear();
  }
  std::reverse(out.begin(), out.end());
  return out;
}

void AnnIndex::SetEf(size_t ef) { impl_->index->setEf(ef); }
size_t AnnIndex::size() const { return impl_->index ? impl_->index->cur_element_count : 0; }

}  // namespace affinity
