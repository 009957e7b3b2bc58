// RocksDB's statuses as the store's, and its background errors as a store
// health fact. Internal to store/ (the RocksDB-backed store and the feature
// store of the same data dir).
//   - An I/O error (a full volume, a failed write or sync) is a storage fault:
//     StorageError (base/status.h), 507 at the HTTP edge, naming the volume.
//   - A failed flush, compaction or write-ahead log write stops RocksDB's writes
//     until DB::Resume(); BackgroundErrors keeps the newest such error until a
//     recovery (RocksDB's own, or Resume) ends it.
//   - RocksDB (7.8) resumes without opening a new log when every memtable is
//     empty, and the failed log's writer then refuses every later write until
//     the store is reopened. KeepAMemtableEntry puts an unlogged entry in the
//     default family's memtable (at open, after a resume, after each flush of
//     that family), so that resuming always flushes a memtable, which opens a
//     new log.
// Thread safety: BackgroundErrors is safe for concurrent use (RocksDB calls it
// from its background threads).
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/listener.h>
#include <rocksdb/status.h>

#include <mutex>
#include <string>

#include "absl/status/status.h"

namespace affinity::store_internal {

// `what` failed with `s` in the store under `volume` (a path on the data dir's
// volume, named in storage faults' messages).
absl::Status FromRocks(const rocksdb::Status& s, const std::string& what, const std::string& volume = "");

// An unlogged entry (meta/unlogged_ms, the time) in `db`'s default family: it
// never waits for a stalled write, and a crash loses it harmlessly.
rocksdb::Status KeepAMemtableEntry(rocksdb::DB* db);

class BackgroundErrors final : public rocksdb::EventListener {
 public:
  void OnBackgroundError(rocksdb::BackgroundErrorReason reason, rocksdb::Status* bg_error) override;
  // The store's owner resumes writes (Store::Resume, from the storage guard's
  // poll, once the volume has room): RocksDB's own recovery of a full volume
  // would otherwise hold every Resume off as "busy".
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason reason, rocksdb::Status bg_error,
                            bool* auto_recovery) override;
  void OnErrorRecoveryEnd(const rocksdb::BackgroundErrorRecoveryInfo& info) override;
  // A flush of the default family leaves its memtable empty: KeepAMemtableEntry.
  void OnFlushCompleted(rocksdb::DB* db, const rocksdb::FlushJobInfo& info) override;
  // The error that stops writes now ("" when none).
  std::string Current() const;
  void Clear();

 private:
  mutable std::mutex mu_;
  std::string current_;  // guarded by mu_
};

}  // namespace affinity::store_internal
