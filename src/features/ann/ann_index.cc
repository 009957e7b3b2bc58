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
#include <thread>


#include "base/mapped_file.h"
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
// and CRC-32C (u32), and <path> is hnswlib's own file. Indexes written before
// carry the two at their end instead. Either is mapped, checked and read in
// place (LoadHnswFromMemory).
absl::Status AnnIndex::Save(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  try {
    impl_->index->saveIndex(tmp);
  } catch (const std::exception& e) {
    return absl::InternalError(std::string("ann: save failed: ") + e.what());
  }
  auto written = MappedFile::Open(tmp);
  if (!written.ok() || (*written)->size() == 0) return absl::InternalError("ann: could not read back " + tmp);
  const uint64_t size = (*written)->size();
  const uint32_t crc = Crc32c((*written)->data(), size);
  written->reset();
  if (!SyncFile(tmp) || std::rename(tmp.c_str(), path.c_str()) != 0)
    return absl::InternalError("ann: cannot write " + path);
  std::string sum(12, '\0');
  std::memcpy(sum.data(), &size, 8);
  std::memcpy(sum.data() + 8, &crc, 4);
  if (!WriteFileAtomic(path + ".sum", sum)) return absl::InternalError("ann: cannot write " + path + ".sum");
  return absl::OkStatus();
}

namespace {

using Hnsw = hnswlib::HierarchicalNSW<float>;

// hnswlib's own index format, read from memory. hnswlib 0.6.2's loadIndex
// reads the same bytes through an ifstream and, while it checks their layout,
// asks the stream for its position (a system call) twice per element: most of
// the time a 300k-element index takes to load. This checks the layout in
// memory first, then fills the members loadIndex fills, as it fills them
// (tested against loadIndex on the same file).
absl::StatusOr<std::unique_ptr<Hnsw>> LoadHnswFromMemory(hnswlib::SpaceInterface<float>* space, const char* p,
                                                        size_t n, const std::string& path) {
  auto bad = [&](const std::string& why) { return absl::DataLossError("ann: cannot load " + path + ": " + why); };
  size_t pos = 0;
  auto pod = [&](auto* v) {
    if (n - pos < sizeof *v) return false;
    std::memcpy(v, p + pos, sizeof *v);
    pos += sizeof *v;
    return true;
  };
  size_t offset_level0, max_elements, count, size_per_element, label_offset, offset_data, max_m, max_m0, m, ef_c;
  int max_level;
  hnswlib::tableint enterpoint;
  double mult;
  if (!pod(&offset_level0) || !pod(&max_elements) || !pod(&count) || !pod(&size_per_element) || !pod(&label_offset) ||
      !pod(&offset_data) || !pod(&max_level) || !pod(&enterpoint) || !pod(&max_m) || !pod(&max_m0) || !pod(&m) ||
      !pod(&mult) || !pod(&ef_c))
    return bad("its header is cut short");
  const size_t data_size = space->get_data_size();
  const size_t links_level0 = max_m0 * sizeof(hnswlib::tableint) + sizeof(hnswlib::linklistsizeint);
  const size_t links_per_element = max_m * sizeof(hnswlib::tableint) + sizeof(hnswlib::linklistsizeint);
  if (max_m == 0 || max_m > 100000 || max_m0 > 200000 || offset_level0 != 0 || offset_data != links_level0 ||
      label_offset != links_level0 + data_size || size_per_element != label_offset + sizeof(hnswlib::labeltype))
    return bad("its layout is not that of a " + std::to_string(data_size / sizeof(float)) + "-dimension index");
  max_elements = std::max(max_elements, count);
  if (count > 0 && (enterpoint >= count || max_level < 0)) return bad("its entry point is not one of its elements");
  if (count > (n - pos) / size_per_element) return bad("its elements are cut short");
  const char* level0 = p + pos;
  pos += count * size_per_element;
  const size_t upper_at = pos;
  for (size_t i = 0; i < count; ++i) {  // the upper levels' links: [u32 bytes][bytes] each
    uint32_t bytes;
    if (!pod(&bytes) || bytes > n - pos || bytes % links_per_element != 0)
      return bad("element " + std::to_string(i) + "'s links are cut short or misshapen");
    pos += bytes;
  }
  if (pos != n) return bad("it holds bytes past its last element");

  auto h = std::make_unique<Hnsw>(space);  // an empty shell, filled below as loadIndex fills it
  h->cur_element_count = 0;                // (its destructor reads these four)
  h->data_level0_memory_ = nullptr;
  h->linkLists_ = nullptr;
  h->visited_list_pool_ = nullptr;
  h->offsetLevel0_ = offset_level0;
  h->max_elements_ = max_elements;
  h->size_data_per_element_ = size_per_element;
  h->label_offset_ = label_offset;
  h->offsetData_ = offset_data;
  h->maxlevel_ = max_level;
  h->enterpoint_node_ = enterpoint;
  h->maxM_ = max_m;
  h->maxM0_ = max_m0;
  h->M_ = m;
  h->mult_ = mult;
  h->ef_construction_ = ef_c;
  h->data_size_ = data_size;
  h->fstdistfunc_ = space->get_dist_func();
  h->dist_func_param_ = space->get_dist_func_param();
  h->size_links_per_element_ = links_per_element;
  h->size_links_level0_ = links_level0;
  h->revSize_ = 1.0 / mult;
  h->ef_ = 10;
  h->num_deleted_ = 0;
  std::vector<std::mutex>(max_elements).swap(h->link_list_locks_);
  std::vector<std::mutex>(Hnsw::max_update_element_locks).swap(h->link_list_update_locks_);
  h->element_levels_ = std::vector<int>(max_elements);
  h->data_level0_memory_ = static_cast<char*>(std::malloc(std::max<size_t>(1, max_elements * size_per_element)));
  h->linkLists_ = static_cast<char**>(std::malloc(sizeof(void*) * std::max<size_t>(1, max_elements)));
  if (!h->data_level0_memory_ || !h->linkLists_) return absl::ResourceExhaustedError("ann: out of memory loading " + path);
  h->visited_list_pool_ = new hnswlib::VisitedListPool(1, max_elements);
  if (count > 0) std::memcpy(h->data_level0_memory_, level0, count * size_per_element);
  h->label_lookup_.reserve(count);
  pos = upper_at;
  for (size_t i = 0; i < count; ++i) {
    h->label_lookup_[h->getExternalLabel(hnswlib::tableint(i))] = hnswlib::tableint(i);
    uint32_t bytes;
    std::memcpy(&bytes, p + pos, 4);
    pos += 4;
    h->linkLists_[i] = nullptr;
    h->element_levels_[i] = int(bytes / links_per_element);
    if (bytes > 0) {
      h->linkLists_[i] = static_cast<char*>(std::malloc(bytes));
      if (!h->linkLists_[i]) return absl::ResourceExhaustedError("ann: out of memory loading " + path);
      std::memcpy(h->linkLists_[i], p + pos, bytes);
      pos += bytes;
    }
    h->cur_element_count = i + 1;
  }
  for (size_t i = 0; i < count; ++i)
    if (h->isMarkedDeleted(hnswlib::tableint(i))) h->num_deleted_ += 1;
  return h;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AnnIndex>> AnnIndex::Load(const std::string& path, int dim) {
  auto impl = std::make_unique<Impl>(dim);
  auto mapped = MappedFile::Open(path);
  if (!mapped.ok()) return absl::Status(mapped.status().code(), "ann: " + std::string(mapped.status().message()));
  const MappedFile& file = **mapped;
  uint64_t body = file.size();
  if (auto sum = ReadFile(path + ".sum")) {
    uint64_t want_size = 0;
    uint32_t want_crc = 0;
    if (sum->size() != 12) return absl::DataLossError("ann: " + path + ".sum is damaged");
    std::memcpy(&want_size, sum->data(), 8);
    std::memcpy(&want_crc, sum->data() + 8, 4);
    if (file.size() != want_size || Crc32c(file.data(), file.size()) != want_crc)
      return absl::DataLossError("ann: " + path + " failed its checksum");
  } else {  // written before checksums moved beside it: its size and CRC-32C at its end
    if (file.size() < 12) return absl::DataLossError("ann: " + path + " is truncated");
    uint32_t crc;
    std::memcpy(&body, file.data() + file.size() - 12, 8);
    std::memcpy(&crc, file.data() + file.size() - 4, 4);
    if (body != file.size() - 12 || Crc32c(file.data(), body) != crc)
      return absl::DataLossError("ann: " + path + " failed its checksum");
  }
  AFF_ASSIGN_OR_RETURN(impl->index, LoadHnswFromMemory(&impl->space, file.data(), size_t(body), path));
  return std::unique_ptr<AnnIndex>(new AnnIndex(std::move(impl), dim));
}
absl::StatusOr<std::unique_ptr<AnnIndex>> AnnIndex::LoadThroughHnswlib(const std::string& path, int dim) {
  auto impl = std::make_unique<Impl>(dim);
  try {
    impl->index = std::make_unique<Hnsw>(&impl->space, path);
  } catch (const std::exception& e) {
    return absl::DataLossError(std::string("ann: cannot load ") + path + ": " + e.what());
  }
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
