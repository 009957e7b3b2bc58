// Approximate nearest neighbours by inner product over embeddings: the one
// adapter around hnswlib, which throws and writes files unchecked. Here errors
// are Status values and files are written to a temp path, checksummed and
// renamed into place; Load verifies the checksum before trusting a file.
// Thread safety: Search is safe for concurrent use; Add/Save/Load are not.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace affinity {

class AnnIndex {
 public:
  ~AnnIndex();
  // Builds an index over `n` vectors of `dim` floats (row-major), labels 0..n-1,
  // inserting on `threads` threads.
  static absl::StatusOr<std::unique_ptr<AnnIndex>> Build(const float* data, size_t n, int dim, int m,
                                                         int ef_construction, int threads);
  // Maps the file, checks its checksum and its layout, and reads it in place.
  static absl::StatusOr<std::unique_ptr<AnnIndex>> Load(const std::string& path, int dim);
  // hnswlib's own loader over the same file (no checksum): what Load is
  // tested against.
  static absl::StatusOr<std::unique_ptr<AnnIndex>> LoadThroughHnswlib(const std::string& path, int dim);
  absl::Status Save(const std::string& path) const;

  // Top-k labels by inner product, best first, as (label, inner product).
  std::vector<std::pair<uint32_t, float>> Search(const float* query, size_t k) const;
  void SetEf(size_t ef);
  size_t size() const;
  int dim() const { return dim_; }

 private:
  struct Impl;
  explicit AnnIndex(std::unique_ptr<Impl> impl, int dim);
  std::unique_ptr<Impl> impl_;
  int dim_;
};

}  // namespace affinity
