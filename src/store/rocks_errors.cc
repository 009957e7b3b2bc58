#include "store/rocks_errors.h"

#include <chrono>

#include "base/status.h"

namespace affinity::store_internal {

absl::Status FromRocks(const rocksdb::Status& s, const std::string& what, const std::string& volume) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = what + ": " + s.ToString();
  if (s.IsIOError() && s.ToString().find("lock") != std::string::npos)
    return absl::FailedPreconditionError(msg + " (is another affinity process using this data dir?)");
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  // A full volume, a failed write or sync, or writes stopped by such an error
  // in the background: nothing was stored; the client may retry once the
  // volume has room.
  if (s.IsIOError() || s.IsNoSpace() || s.subcode() == rocksdb::Status::kSpaceLimit)
    return StorageError(msg + (volume.empty() ? "" : " (the data dir's volume, at " + volume + ")"));
  return absl::InternalError(msg);
}

void BackgroundErrors::OnBackgroundError(rocksdb::BackgroundErrorReason, rocksdb::Status* bg_error) {
  if (!bg_error || bg_error->ok()) return;
  std::lock_guard<std::mutex> lock(mu_);
  current_ = bg_error->ToString();
}

void BackgroundErrors::OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status bg_error,
                                            bool* auto_recovery) {
  bg_error.PermitUncheckedError();
  if (auto_recovery) *auto_recovery = false;
}

void BackgroundErrors::OnErrorRecoveryEnd(const rocksdb::BackgroundErrorRecoveryInfo& info) {
  if (!info.new_bg_error.ok()) return;  // still failing
  Clear();
}

std::string BackgroundErrors::Current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

void BackgroundErrors::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  current_.clear();
}

rocksdb::Status KeepAMemtableEntry(rocksdb::DB* db) {
  rocksdb::WriteOptions unlogged;
  unlogged.disableWAL = true;
  unlogged.no_slowdown = true;
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const std::string ms = std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
  return db->Put(unlogged, db->DefaultColumnFamily(), "meta/unlogged_ms", ms);
}

void BackgroundErrors::OnFlushCompleted(rocksdb::DB* db, const rocksdb::FlushJobInfo& info) {
  if (info.cf_name == rocksdb::kDefaultColumnFamilyName) KeepAMemtableEntry(db).PermitUncheckedError();
}

}  // namespace affinity::store_internal
