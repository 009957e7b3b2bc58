// A file of named, checksummed sections of plain arrays: an 8-byte magic that
// names the format, then sections [u32 name_len][name][u64 bytes][padding]
// [data][u32 crc32c], each crc32c over everything from name_len to the data's
// end, so a damaged header cannot rename a section into one the reader
// silently skips. The padding (zeros) makes each section's data start at a
// multiple of the format's alignment in the file, so that a reader can use it
// in place. Snapshots' arrays.bin and the live state's checkpoint are written
// this way.
// The reader maps the file into memory and checks every section's checksum at
// Open, before any is used. Get copies a section into a vector; Get into a
// FrozenArray views it in the mapping when it is aligned for its type (the
// mapping lives as long as any view of it). Files are replaced by rename, never
// written in place, so a mapping never sees them change.
// Thread safety: one writer or reader per object; views are immutable.
#pragma once

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "base/frozen_array.h"
#include "base/mapped_file.h"

namespace affinity {

// A version of the format: its magic, whether its checksums cover the
// section headers (the first version's covered the data only), and where its
// sections' data starts.
struct SectionFormat {
  std::string_view magic;
  bool checksum_covers_header = true;
  size_t align = 1;
};

class SectionWriter {
 public:
  explicit SectionWriter(const SectionFormat& format);
  template <typename T>
  void Add(std::string_view name, const std::vector<T>& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    AddBytes(name, v.data(), v.size() * sizeof(T));
  }
  template <typename T>
  void Add(std::string_view name, const FrozenArray<T>& v) {
    AddBytes(name, v.data(), v.size() * sizeof(T));
  }
  void AddBytes(std::string_view name, const void* data, size_t bytes);
  const std::string& data() const { return out_; }

 private:
  size_t align_;
  std::string out_;
};

class SectionReader {
 public:
  SectionReader() = default;
  ~SectionReader();
  SectionReader(const SectionReader&) = delete;
  SectionReader& operator=(const SectionReader&) = delete;

  // Maps the file and checks every section. `formats` lists the versions
  // read, the current one first.
  absl::Status Open(const std::string& path, std::initializer_list<SectionFormat> formats);
  bool Has(const std::string& name) const { return sections_.count(name) > 0; }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [name, s] : sections_) out.push_back(name);
    return out;
  }
  // A section's elements, copied (empty when it is absent; a trailing partial
  // element is dropped). Every section was checked at Open: this cannot fail.
  template <typename T>
  void Get(const std::string& name, std::vector<T>* out) {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto [p, n] = Find(name, sizeof(T));
    out->resize(n);
    if (n) std::memcpy(out->data(), p, n * sizeof(T));  // p may not be aligned for T
    copied_bytes_ += n * sizeof(T);
  }
  // As above, viewed in the mapping when aligned for T, else copied.
  template <typename T>
  void Get(const std::string& name, FrozenArray<T>* out) {
    const auto [p, n] = Find(name, sizeof(T));
    if (reinterpret_cast<uintptr_t>(p) % alignof(T) == 0) {
      *out = FrozenArray<T>::View(map_, static_cast<const T*>(p), n);
      viewed_bytes_ += n * sizeof(T);
    } else {
      std::vector<T> copy;
      Get(name, &copy);
      *out = std::move(copy);
    }
  }
  // How many bytes of sections were viewed in place, and copied.
  uint64_t viewed_bytes() const { return viewed_bytes_; }
  uint64_t copied_bytes() const { return copied_bytes_; }
  uint64_t file_bytes() const { return file_bytes_; }

 private:
  struct Section {
    uint64_t header_at = 0;  // where its name length starts
    uint64_t data_at = 0;
    uint64_t bytes = 0;
  };
  // The section's data and element count (nullptr, 0 when absent).
  std::pair<const void*, size_t> Find(const std::string& name, size_t element_bytes);
  std::string path_;
  std::shared_ptr<const MappedFile> map_;
  const char* base_ = nullptr;
  SectionFormat format_;
  uint64_t viewed_bytes_ = 0, copied_bytes_ = 0;
  uint64_t file_bytes_ = 0;
  std::map<std::string, Section> sections_;
};

}  // namespace affinity
