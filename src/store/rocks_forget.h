// Forgetting a person in the RocksDB store (store/rocks_store.cc; Store::Forget
// in store/store.h says what goes): the scans that find what is theirs, the one
// write that removes it, and the compaction of what it touched. Internal to store/.
// Thread safety: as the DB it writes (safe for concurrent use).
#pragma once

#include <rocksdb/db.h>

#include <string>
#include <vector>

#include "store/store.h"

namespace affinity::store_internal {

// The column families forgetting reads and writes (a null one holds nothing).
struct ForgetFamilies {
  rocksdb::ColumnFamilyHandle* meta = nullptr;  // the default family: the forgotten list
  rocksdb::ColumnFamilyHandle* events = nullptr;
  rocksdb::ColumnFamilyHandle* entities = nullptr;
  rocksdb::ColumnFamilyHandle* follows = nullptr;
  rocksdb::ColumnFamilyHandle* experiments = nullptr;
  rocksdb::ColumnFamilyHandle* audit_index = nullptr;
};

// The viewer index's key of one audit record: viewer id, a NUL, request id.
std::string AuditIndexKey(const std::string& viewer_id, const std::string& request_id);

absl::StatusOr<Store::ForgetSummary> ForgetEntity(rocksdb::DB* db, const ForgetFamilies& cfs,
                                                  const std::string& ext_id, int64_t now_ms, uint64_t log_length,
                                                  const std::string& db_dir);
absl::StatusOr<std::vector<Store::Forgotten>> ReadForgotten(rocksdb::DB* db, const ForgetFamilies& cfs,
                                                            const std::string& db_dir);
absl::StatusOr<std::vector<std::string>> ReadAuditIndex(rocksdb::DB* db, const ForgetFamilies& cfs,
                                                        const std::string& viewer_id, const std::string& db_dir);

}  // namespace affinity::store_internal
