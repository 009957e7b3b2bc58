// Expiry by age for a column family (store/rocks_store.cc): a RocksDB
// compaction filter that drops values past a retention, and the cutoff reads
// use to treat them as absent until compaction reaches them. Internal to store/.
// Thread safety: immutable after construction.
#pragma once

#include <rocksdb/compaction_filter.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "base/clock.h"

namespace affinity::store_internal {

// Expiry by age: a value whose time (read by `time_of`; 0 = unknown, kept) is
// before now - retention is past it. Used for audit records and idempotency
// records (their write time) and events (their ts).
class Retention final : public rocksdb::CompactionFilter {
 public:
  using TimeOf = int64_t (*)(std::string_view value);
  Retention(int64_t retention_ms, const Clock* clock, TimeOf time_of, const char* name)
      : retention_ms_(retention_ms), clock_(clock), time_of_(time_of), name_(name) {}
  int64_t retention_ms() const { return retention_ms_; }
  const Clock* clock() const { return clock_; }
  // The oldest time still kept (0 when nothing expires).
  int64_t Cutoff() const { return retention_ms_ > 0 ? clock_->NowMillis() - retention_ms_ : 0; }
  bool Expired(int64_t t) const { return retention_ms_ > 0 && t > 0 && t < Cutoff(); }
  bool Filter(int, const rocksdb::Slice&, const rocksdb::Slice& value, std::string*, bool*) const override {
    return Expired(time_of_(value.ToStringView()));
  }
  const char* Name() const override { return name_; }

 private:
  int64_t retention_ms_;
  const Clock* clock_;
  TimeOf time_of_;
  const char* name_;
};

}  // namespace affinity::store_internal
