// Writes records straight into a closed data dir's RocksDB column family,
// past the store's own codecs: how tests make records that builds before
// wrote, or records damaged on disk.
#pragma once

#include <rocksdb/db.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace affinity::testing {

// False when the database or the column family cannot be opened or written.
inline bool PutRawRecords(const std::string& dir, const std::string& column_family,
                          const std::vector<std::pair<std::string, std::string>>& records) {
  std::vector<std::string> names;
  if (!rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &names).ok()) return false;
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const auto& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  if (!rocksdb::DB::Open(rocksdb::DBOptions(), dir, cfs, &handles, &raw).ok()) return false;
  std::unique_ptr<rocksdb::DB> db(raw);
  bool ok = false;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] != column_family) continue;
    ok = true;
    for (const auto& [key, value] : records) ok = ok && db->Put(rocksdb::WriteOptions(), handles[i], key, value).ok();
  }
  for (auto* h : handles) ok = db->DestroyColumnFamilyHandle(h).ok() && ok;
  return ok;
}

}  // namespace affinity::testing
