// A whole file mapped read-only into memory. Files read this way (snapshot
// arrays, checkpoints, ANN indexes) are replaced by rename, never written in
// place, so a mapping never sees its file change; it keeps the file's data
// even after the file is removed, until the last owner lets go.
// Thread safety: immutable once opened.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace affinity {

class MappedFile {
 public:
  // NotFound when it cannot be opened; an empty file maps to no bytes.
  static absl::StatusOr<std::shared_ptr<const MappedFile>> Open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const char* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  MappedFile(const char* data, size_t size) : data_(data), size_(size) {}
  const char* data_;
  size_t size_;
};

}  // namespace affinity
