// The experiments column family's merge operator (store/rocks_store.cc).
// Internal to store/.
// Thread safety: stateless.
#pragma once

#include <rocksdb/merge_operator.h>

#include <string>
#include <vector>

#include "store/store.h"

namespace affinity::store_internal {

// Counters add up: a merge operand is a vector of int64 to add element by
// element (the longer one decides the length). Definitions are plain Puts and
// never merged.
class AddCountersOperator final : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice&, const rocksdb::Slice* existing, const rocksdb::Slice& value, std::string* out,
             rocksdb::Logger*) const override {
    std::vector<int64_t> sum = existing ? DecodeCounters(existing->ToStringView()) : std::vector<int64_t>();
    const std::vector<int64_t> add = DecodeCounters(value.ToStringView());
    if (sum.size() < add.size()) sum.resize(add.size(), 0);
    for (size_t i = 0; i < add.size(); ++i) sum[i] += add[i];
    *out = EncodeCounters(sum);
    return true;
  }
  const char* Name() const override { return "affinity.AddCounters"; }
};

}  // namespace affinity::store_internal
