// The in-memory entity registry: external string id <-> Ref, plus each entity's
// metadata and each creator's items. Loaded from the Store at start and kept in
// step by the Ingestor.
// Thread safety: readers never take a lock that a writer holds for more than one
// hash-map insert; metadata is published as immutable shared objects. Writers
// serialise on write_mutex().
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/chunked_array.h"
#include "base/ids.h"
#include "store/store.h"

namespace affinity {

class EntityRegistry {
 public:
  using Info = EntityRecord;

  std::optional<Ref> Find(std::string_view ext_id) const;
  // Metadata of a published entity, nullptr when unknown.
  std::shared_ptr<const Info> Get(Ref r) const;
  // Convenience: external id or "" when unknown.
  std::string ExtId(Ref r) const;
  // Creator of an item (invalid Ref otherwise).
  Ref CreatorOf(Ref r) const;
  // Number of published entities of a kind (dense ids are 0..Count-1).
  uint32_t Count(Kind k) const { return counts_[int(k)].load(std::memory_order_acquire); }
  uint64_t Total() const { return uint64_t(Count(Kind::kUser)) + Count(Kind::kCreator) + Count(Kind::kItem); }
  // Items published by a creator (dense item ids), never null.
  std::shared_ptr<const std::vector<DenseId>> ItemsOf(DenseId creator) const;

  // Writer side. REQUIRES: write_mutex() held.
  std::mutex& write_mutex() { return write_mu_; }
  // Reserves the next dense id of a kind (published by Publish).
  Ref Reserve(Kind k) { return Ref(k, reserved_[int(k)]++); }
  void Publish(const EntityRecord& e);

 private:
  static constexpr int kShards = 64;
  struct Shard {
    mutable std::shared_mutex mu;
    std::unordered_map<std::string, Ref> map;
  };
  static size_t ShardOf(std::string_view s) { return std::hash<std::string_view>()(s) % kShards; }

  std::array<Shard, kShards> shards_;
  std::array<ChunkedArray<std::atomic<std::shared_ptr<const Info>>>, kNumKinds> infos_;
  ChunkedArray<std::atomic<std::shared_ptr<const std::vector<DenseId>>>> creator_items_;
  ChunkedArray<std::atomic<uint32_t>> item_creator_;  // Ref bits + 1 of each item's creator (0 = none)
  std::array<std::atomic<uint32_t>, kNumKinds> counts_{};
  std::mutex write_mu_;
  std::array<uint32_t, kNumKinds> reserved_{};  // guarded by write_mu_
};

}  // namespace affinity
