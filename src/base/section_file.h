// A file of named, checksummed sections of plain arrays: an 8-byte magic that
// names the format, then sections [u32 name_len][name][u64 bytes][data][u32
// crc32c], each crc32c over name_len, name, bytes and data, so a damaged header
// cannot rename a section into one the reader silently skips. Snapshots'
// arrays.bin and the live state's checkpoint are written this way.
// The reader checks every section's checksum at Open (through a small buffer)
// and reads each section's data straight into its destination at Get: one
// copy, no buffer of the whole file.
// Thread safety: one writer or reader per object.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
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
  SectionReader() = default;
  ~SectionReader();
  SectionReader(const SectionReader&) = delete;
  SectionReader& operator=(const SectionReader&) = delete;

  // Opens the file and reads its section headers. `legacy_magic` (optional)
  // names an older version of the format whose checksums covered each
  // section's data only.
  absl::Status Open(const std::string& path, std::string_view magic, std::string_view legacy_magic = {});
  bool Has(const std::string& name) const { return sections_.count(name) > 0; }
  // Reads a section into out (empty when it is absent; a trailing partial
  // element is dropped). A read error leaves out empty, returns false and is
  // kept in status().
  template <typename T>
  bool Get(const std::string& name, std::vector<T>* out) {
    static_assert(std::is_trivially_copyable_v<T>);
    out->clear();
    auto it = sections_.find(name);
    if (it == sections_.end()) return true;
    out->resize(it->second.bytes / sizeof(T));
    if (!Read(it->first, it->second, out->data(), out->size() * sizeof(T))) {
      out->clear();
      return false;
    }
    return true;
  }
  // The first error of any Get (OK when none).
  const absl::Status& status() const { return status_; }
  uint64_t file_bytes() const { return file_bytes_; }

 private:
  struct Section {
    uint64_t header_at = 0;  // where its name length starts
    uint64_t data_at = 0;
    uint64_t bytes = 0;
  };
  absl::Status Verify(const std::string& name, const Section& s);
  bool Read(const std::string& name, const Section& s, void* dst, size_t n);
  std::string path_;
  int fd_ = -1;
  bool legacy_ = false;
  uint64_t file_bytes_ = 0;
  std::map<std::string, Section> sections_;
  absl::Status status_;
};

}  // namespace affinity
