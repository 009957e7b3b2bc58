// The audit records' and the audit chain's column families of the RocksDB
// store (store/rocks_store.cc): one write of the audit log's writer, and the
// reads `affinity audit verify` and the writer need. Internal to store/.
// Thread safety: as the DB it reads (safe for concurrent use).
#pragma once

#include <rocksdb/db.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "store/store.h"

namespace affinity::store_internal {

class RocksAudit {
 public:
  // chain is null for a dir written before the chain, opened read-only.
  // index (the viewer index, store/rocks_forget.h) is null likewise.
  RocksAudit(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* audit, rocksdb::ColumnFamilyHandle* chain,
             rocksdb::ColumnFamilyHandle* index, const std::string& db_dir)
      : db_(db), audit_(audit), chain_(chain), index_(index), db_dir_(db_dir) {}
  // now: the stamp of records written without one.
  absl::Status Write(const Store::AuditWrite& w, int64_t now) const;
  absl::StatusOr<std::optional<Store::StoredAudit>> Get(const std::string& request_id) const;
  absl::Status Scan(const std::function<void(std::string_view, int64_t, std::string_view)>& fn) const;
  absl::Status ScanChain(const std::string& from,
                         const std::function<bool(std::string_view, std::string_view)>& fn) const;
  absl::StatusOr<std::optional<std::pair<std::string, std::string>>> LastInChain(const std::string& prefix) const;

 private:
  rocksdb::DB* db_;
  rocksdb::ColumnFamilyHandle* audit_;
  rocksdb::ColumnFamilyHandle* chain_;
  rocksdb::ColumnFamilyHandle* index_;
  const std::string& db_dir_;
};

}  // namespace affinity::store_internal
