// A file of named, checksummed sections of plain arrays: an 8-byte magic that
// names the format, then sections [u32 name_len][name][u64 bytes][data][u32
// crc32c], each crc32c over name_len, name, bytes and data, so a damaged header
// cannot rename a section into one the reader silently skips. Snapshots'
// arrays.bin and the live state's checkpoint are written this way.
// Thread safety: one writer or reader per object.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace affinity {

class SectionWriter {
 public:
  explicit SectionWriter(std::string_view magic);
  template <typename T>
  void Add(std::string_view name, const std::vector<T>& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    AddBytes(name, v.data(), v.size() * sizeof(T));
  }
  void AddBytes(std::string_view name, const void* data, size_t bytes);
  const std::string& data() const { return out_; }

 private:
  std::string out_;
};

class SectionReader {
 public:
  // Reads and checks the whole file. `legacy_magic` (optional) names an older
  // version of the format whose checksums covered each section's data only.
  absl::Status Open(const std::string& path, std::string_view magic, std::string_view legacy_magic = {});
  bool Has(const std::string& name) const { return sections_.count(name) > 0; }
  // The section's elements (empty when it is absent; a trailing partial
  // element is dropped).
  template <typename T>
  void Get(const std::string& name, std::vector<T>* out) const {
    static_assert(std::is_trivially_copyable_v<T>);
    auto it = sections_.find(name);
    out->clear();
    if (it == sections_.end()) return;
    out->resize(it->second.second / sizeof(T));
    if (!out->empty()) std::memcpy(out->data(), data_.data() + it->second.first, out->size() * sizeof(T));
  }

 private:
  std::string path_;
  std::string data_;
  std::map<std::string, std::pair<size_t, uint64_t>> sections_;  // name -> (offset, bytes)
};

}  // namespace affinity
