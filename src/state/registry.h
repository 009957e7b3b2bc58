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

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "base/chunked_array.h"
#include "base/ids.h"
#include "store/store.h"

namespace affinity {

// External ids (entities, viewers, seeds, exclusions, path ids) are 1 to
// kMaxExternalIdBytes bytes of printable UTF-8: valid UTF-8 with no control character
// (C0 including NUL, DEL, C1) and not only whitespace.
inline constexpr size_t kMaxExternalIdBytes = 256;
// OK for a valid external id; else InvalidArgument naming `field` and what is
// wrong ("viewer_id must be 1 to 256 bytes of printable UTF-8: it is blank").
// The one check every route applies to every id it reads.
absl::Status CheckExternalId(std::string_view id, std::string_view field);

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
  // Whether a query at now_ms may return it: not deleted, not past expires_at.
  // An item whose creator is deleted is not recommendable either (until the
  // creator is upserted again).
  bool Recommendable(Ref r, int64_t now_ms) const {
    if (!r.valid()) return true;
    const int64_t until = Until(r);
    if (until != 0 && !(until > 0 && now_ms < until)) return false;
    if (r.kind() != Kind::kItem) return true;
    const Ref creator = CreatorOf(r);
    return !creator.valid() || Until(creator) != -1;
  }
  // Deleted itself, or an item whose creator is deleted: never recommended and
  // never named in a reason.
  bool Removed(Ref r) const {
    if (!r.valid()) return false;
    if (Until(r) == -1) return true;
    const Ref creator = r.kind() == Kind::kItem ? CreatorOf(r) : Ref();
    return creator.valid() && Until(creator) == -1;
  }
  // Whether it carries `label`.
  bool HasLabel(Ref r, std::string_view label) const;
  // Up to `limit` entities of `kind` carrying `label` (deleted ones included:
  // callers check Recommendable), in registration order.
  std::vector<Ref> WithLabel(std::string_view label, Kind kind, size_t limit) const;

  // Writer side. REQUIRES: write_mutex() held.
  std::mutex& write_mutex() { return write_mu_; }
  // Reserves the next dense id of a kind (published by Publish).
  Ref Reserve(Kind k) { return Ref(k, reserved_[int(k)]++); }
  void Publish(const EntityRecord& e) { Publish(EntityRecord(e)); }
  void Publish(EntityRecord&& e);
  // Forgetting a person (docs/security.md, "Forget"): ext_id no longer maps to
  // its slot, and the slot holds `tombstone` (deleted: never recommended nor
  // named in a reason; Store::Forget wrote the same record).
  void Forget(const std::string& ext_id, EntityRecord tombstone);
  // Publishes many new entities at once (a start's load), in dense-id order:
  // as Publish, with each creator's item list built once instead of copied
  // per item, and each shard's map sized once.
  void PublishNew(std::vector<EntityRecord> entities);

 private:
  // 0 = recommendable, -1 = deleted, else expires_at (unix ms).
  int64_t Until(Ref r) const {
    // Most entities never expire nor get deleted: a bit per entity (a small,
    // cached array) says whether to look further.
    auto* word = restricted_[int(r.kind())].Find(r.id() >> 6);
    if (!word || !((word->load(std::memory_order_acquire) >> (r.id() & 63)) & 1)) return 0;
    auto* slot = until_[int(r.kind())].Find(r.id());
    return slot ? slot->load(std::memory_order_acquire) : 0;
  }

  static constexpr int kShards = 64;
  struct Shard {
    mutable std::shared_mutex mu;
    absl::flat_hash_map<std::string, Ref> map;
  };
  static size_t ShardOf(std::string_view s) { return std::hash<std::string_view>()(s) % kShards; }

  std::array<Shard, kShards> shards_;
  std::array<ChunkedArray<std::atomic<std::shared_ptr<const Info>>>, kNumKinds> infos_;
  ChunkedArray<std::atomic<std::shared_ptr<const std::vector<DenseId>>>> creator_items_;
  ChunkedArray<std::atomic<uint32_t>> item_creator_;  // Ref bits + 1 of each item's creator (0 = none)
  // Per kind: 0 = recommendable, -1 = deleted, else expires_at (unix ms); and a
  // bit per entity set once it ever had a nonzero value here.
  std::array<ChunkedArray<std::atomic<int64_t>>, kNumKinds> until_;
  std::array<ChunkedArray<std::atomic<uint64_t>>, kNumKinds> restricted_;
  // Label -> entities that carried it when published (checked against their
  // current labels on read); appended under write_mu_, read under labels_mu_.
  mutable std::shared_mutex labels_mu_;
  std::unordered_map<std::string, std::vector<Ref>> by_label_;
  std::array<std::atomic<uint32_t>, kNumKinds> counts_{};
  std::mutex write_mu_;
  std::array<uint32_t, kNumKinds> reserved_{};  // guarded by write_mu_
  bool batch_items_ = false;  // guarded by write_mu_: PublishNew builds creator -> items itself
};

}  // namespace affinity
