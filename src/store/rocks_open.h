// Opening a RocksDB store whose data dir may predate some of its column
// families (store/rocks_store.cc). Internal to store/.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <algorithm>
#include <string>
#include <vector>

namespace affinity::store_internal {

// Opens the column families the data dir has with `open` (read-only and
// secondary opens cannot create any): a dir written by an older build lacks the
// newer ones, whose handles stay null (read as empty; the store writes nothing then).
template <typename Open>
rocksdb::Status OpenPresent(const rocksdb::Options& options, const std::string& db_dir,
                            const std::vector<rocksdb::ColumnFamilyDescriptor>& descs,
                            std::vector<rocksdb::ColumnFamilyHandle*>* handles, rocksdb::DB** raw, const Open& open) {
  std::vector<std::string> existing;
  if (auto ls = rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(options), db_dir, &existing); !ls.ok()) return ls;
  std::vector<rocksdb::ColumnFamilyDescriptor> present;
  std::vector<size_t> slot;
  for (size_t i = 0; i < descs.size(); ++i)
    if (std::find(existing.begin(), existing.end(), descs[i].name) != existing.end()) {
      present.push_back(descs[i]);
      slot.push_back(i);
    }
  std::vector<rocksdb::ColumnFamilyHandle*> opened;
  const rocksdb::Status s = open(present, &opened, raw);
  handles->assign(descs.size(), nullptr);
  for (size_t i = 0; i < opened.size(); ++i) (*handles)[slot[i]] = opened[i];
  return s;
}

}  // namespace affinity::store_internal
