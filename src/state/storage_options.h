// [storage]: the data dir's volume (its owner: state/storage_guard.h).
#pragma once

#include <cstdint>
#include <string>
#include "absl/status/status.h"
#include "base/settings.h"

namespace affinity {

// The data dir's volume (docs/runbooks/disk-full.md): writes are refused with
// 507 while its free space is below the floor, before the store meets a full
// disk, and flow again on their own once space is back.
struct StorageOptions {
  int64_t min_free_mb = 1024;  // the free-space floor (MiB): room for memtable flushes, a checkpoint, a snapshot
  int max_wal_mb = 256;        // write-ahead log beyond this: the memtables pinning it are flushed
  int poll_ms = 1000;          // how often the free space is read (and stopped writes resumed)

  static constexpr const char* kSection = "storage";
  // Its settings, for the configuration reader (base/settings.h).
  template <class Read>
  void Fields(Read& read) {
    read("storage", "min_free_mb", min_free_mb);
    read("storage", "max_wal_mb", max_wal_mb);
    read("storage", "poll_ms", poll_ms);
  }
  absl::Status Validate() const {
    auto bad = SettingError;
    if (min_free_mb < 0) return bad("storage.min_free_mb must be >= 0");
    if (max_wal_mb < 16) return bad("storage.max_wal_mb must be >= 16");
    if (poll_ms < 50) return bad("storage.poll_ms must be >= 50");
    return absl::OkStatus();
  }
};

}  // namespace affinity
