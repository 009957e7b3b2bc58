// Which snapshot version serves: the one pointer `batch` and `backfill` move
// when they publish a version and every server polls (features/snapshot_manager.h).
// Every reader and writer of it goes through a SnapshotPointer; the single-
// machine one is <data>/snapshots/CURRENT, replaced atomically (write + rename).
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"

namespace affinity {

class SnapshotPointer {
 public:
  virtual ~SnapshotPointer() = default;
  // The version that serves ("v000003"), or "" when none is published (or the
  // pointer cannot be read).
  virtual std::string Current() const = 0;
  // Makes `version` the one that serves: a reader sees the old version or the new.
  virtual absl::Status Set(const std::string& version) = 0;
  // Where the pointer lives, for messages ("snapshots/CURRENT").
  virtual std::string Where() const = 0;
};

class FileSnapshotPointer : public SnapshotPointer {
 public:
  explicit FileSnapshotPointer(const std::string& data_dir) : path_(data_dir + "/snapshots/CURRENT") {}
  std::string Current() const override;
  absl::Status Set(const std::string& version) override;
  std::string Where() const override { return "snapshots/CURRENT"; }

 private:
  std::string path_;
};

// `pointer`, or the data dir's own CURRENT file when null.
std::shared_ptr<SnapshotPointer> PointerOr(std::shared_ptr<SnapshotPointer> pointer, const std::string& data_dir);

}  // namespace affinity
