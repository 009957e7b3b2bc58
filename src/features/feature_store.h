// The feature store: records (group, entity, feature_vector, freshness_ts,
// provenance) in RocksDB, one key per (group, entity). Each batch snapshot owns
// one store (snapshots/vN/features), written once by the batch and opened
// read-only by servers, which materialise it into dense arrays on swap-in.
// The batch writes it without a write-ahead log and seals it before publishing.
// Key: group name, 0x00, Ref bits (big endian). Value: u16 n, n floats, i64
// freshness_ts, provenance bytes (docs/storage.md).
// Thread safety: safe for concurrent use.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/ids.h"
#include "features/feature_registry.h"

namespace affinity {

struct FeatureRecord {
  Ref entity;
  std::vector<float> values;
  int64_t freshness_ts = 0;
  std::string provenance;
};

class FeatureStore {
 public:
  virtual ~FeatureStore() = default;
  // Writes records of one declared group atomically. Undeclared groups and
  // vectors whose length differs from the group's components are refused.
  virtual absl::Status Put(const std::string& group, const std::vector<FeatureRecord>& records) = 0;
  virtual absl::StatusOr<std::optional<FeatureRecord>> Get(const std::string& group, Ref entity) const = 0;
  virtual absl::Status Scan(const std::string& group, const std::function<void(const FeatureRecord&)>& fn) const = 0;
  // Ends writing: everything written is flushed into sorted files and
  // compacted into one run, so that readers open the store without replaying
  // a write-ahead log and scan each group in one pass. A writable store keeps
  // no log of its own (a snapshot is published only after this returns), so
  // records written and not sealed are lost on a crash.
  virtual absl::Status Seal() = 0;
};

absl::StatusOr<std::unique_ptr<FeatureStore>> OpenRocksFeatureStore(const std::string& path, bool read_only,
                                                                   std::vector<FeatureGroup> groups);

}  // namespace affinity
