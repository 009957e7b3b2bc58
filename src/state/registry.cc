#include "state/registry.h"

#include <algorithm>
#include <cstdio>
#include <mutex>

namespace affinity {

absl::Status CheckExternalId(std::string_view id, std::string_view field) {
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(std::string(field) + " must be 1 to " + std::to_string(kMaxExternalIdBytes) +
                                      " bytes of printable UTF-8: " + why);
  };
  if (id.empty()) return bad("it is empty");
  if (id.size() > kMaxExternalIdBytes) return bad("it is " + std::to_string(id.size()) + " bytes");
  bool blank = true;
  for (size_t i = 0; i < id.size();) {
    const auto c = static_cast<unsigned char>(id[i]);
    char hex[8];
    if (c < 0x20 || c == 0x7F) {
      std::snprintf(hex, sizeof hex, "0x%02X", c);
      return bad("it contains the control character " + std::string(hex) + " at byte " + std::to_string(i));
    }
    // The length of this UTF-8 sequence and its smallest code point.
    const size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || i + n > id.size()) return bad("it is not valid UTF-8 (byte " + std::to_string(i) + ")");
    uint32_t cp = n == 1 ? c : c & (0x7F >> n);
    for (size_t j = 1; j < n; ++j) {
      const auto cc = static_cast<unsigned char>(id[i + j]);
      if ((cc & 0xC0) != 0x80) return bad("it is not valid UTF-8 (byte " + std::to_string(i + j) + ")");
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return bad("it is not valid UTF-8 (byte " + std::to_string(i) + ")");
    if (cp >= 0x80 && cp <= 0x9F) {
      std::snprintf(hex, sizeof hex, "U+%04X", unsigned(cp));
      return bad("it contains the control character " + std::string(hex) + " at byte " + std::to_string(i));
    }
    if (c != ' ') blank = false;
    i += n;
  }
  if (blank) return bad("it is blank (only spaces)");
  return absl::OkStatus();
}

std::optional<Ref> EntityRegistry::Find(std::string_view ext_id) const {
  const Shard& s = shards_[ShardOf(ext_id)];
  std::shared_lock lock(s.mu);
  auto it = s.map.find(absl::string_view(ext_id.data(), ext_id.size()));  // absl has its own string_view here
  if (it == s.map.end()) return std::nullopt;
  return it->second;
}

std::shared_ptr<const EntityRegistry::Info> EntityRegistry::Get(Ref r) const {
  if (!r.valid()) return nullptr;
  auto* slot = infos_[int(r.kind())].Find(r.id());
  return slot ? slot->load(std::memory_order_acquire) : nullptr;
}

std::string EntityRegistry::ExtId(Ref r) const {
  auto info = Get(r);
  return info ? info->ext_id : std::string();
}

Ref EntityRegistry::CreatorOf(Ref r) const {
  if (r.kind() != Kind::kItem) return Ref();
  auto* slot = item_creator_.Find(r.id());
  uint32_t v = slot ? slot->load(std::memory_order_acquire) : 0;
  return v ? Ref::FromBits(v - 1) : Ref();
}

std::shared_ptr<const std::vector<DenseId>> EntityRegistry::ItemsOf(DenseId creator) const {
  static const auto kEmpty = std::make_shared<const std::vector<DenseId>>();
  auto* slot = creator_items_.Find(creator);
  if (!slot) return kEmpty;
  auto p = slot->load(std::memory_order_acquire);
  return p ? p : kEmpty;
}

bool EntityRegistry::HasLabel(Ref r, std::string_view label) const {
  auto info = Get(r);
  return info && std::find(info->labels.begin(), info->labels.end(), label) != info->labels.end();
}

std::vector<Ref> EntityRegistry::WithLabel(std::string_view label, Kind kind, size_t limit) const {
  std::vector<Ref> out;
  std::shared_lock lock(labels_mu_);
  auto it = by_label_.find(std::string(label));
  if (it == by_label_.end()) return out;
  for (Ref r : it->second) {
    if (out.size() >= limit) break;
    if (r.kind() == kind && HasLabel(r, label)) out.push_back(r);
  }
  return out;
}

void EntityRegistry::Publish(EntityRecord&& e) {
  const int k = int(e.ref.kind());
  const Ref ref = e.ref, creator = e.creator;
  auto previous = Get(ref);
  const int64_t until = e.deleted ? -1 : std::max<int64_t>(0, e.expires_at);
  if (until != 0 || until_[k].Find(ref.id())) {
    until_[k].Ensure(ref.id()).store(until, std::memory_order_release);
    restricted_[k].Ensure(ref.id() >> 6).fetch_or(uint64_t(1) << (ref.id() & 63), std::memory_order_release);
  }
  for (const std::string& label : e.labels) {
    if (previous && std::find(previous->labels.begin(), previous->labels.end(), label) != previous->labels.end())
      continue;  // indexed when it first carried it
    std::unique_lock lock(labels_mu_);
    by_label_[label].push_back(ref);
  }
  // Its metadata before its id is findable: whoever finds it can read it.
  auto info = std::make_shared<const Info>(std::move(e));
  infos_[k].Ensure(ref.id()).store(info, std::memory_order_release);
  if (!previous) {
    Shard& s = shards_[ShardOf(info->ext_id)];
    std::unique_lock lock(s.mu);
    s.map[info->ext_id] = ref;
  }
  // Creator -> items, copied on write.
  Ref old_creator = previous ? previous->creator : Ref();
  if (!batch_items_ && ref.kind() == Kind::kItem && !(old_creator == creator)) {
    if (old_creator.valid()) {
      auto items = std::make_shared<std::vector<DenseId>>(*ItemsOf(old_creator.id()));
      items->erase(std::remove(items->begin(), items->end(), ref.id()), items->end());
      creator_items_.Ensure(old_creator.id()).store(std::move(items));
    }
    if (creator.valid()) {
      auto items = std::make_shared<std::vector<DenseId>>(*ItemsOf(creator.id()));
      items->push_back(ref.id());
      creator_items_.Ensure(creator.id()).store(std::move(items));
    }
  }
  if (ref.kind() == Kind::kItem)
    item_creator_.Ensure(ref.id()).store(creator.valid() ? creator.bits + 1 : 0, std::memory_order_release);
  const uint32_t want = ref.id() + 1;
  reserved_[k] = std::max(reserved_[k], want);
  if (counts_[k].load() < want) counts_[k].store(want, std::memory_order_release);
}

void EntityRegistry::Forget(const std::string& ext_id, EntityRecord tombstone) {
  {
    Shard& s = shards_[ShardOf(ext_id)];
    std::unique_lock lock(s.mu);
    s.map.erase(ext_id);
  }
  Publish(std::move(tombstone));  // its slot had a record: the tombstone's key is not mapped
}

void EntityRegistry::PublishNew(std::vector<EntityRecord> entities) {
  // Dense-id order, kind by kind: each record placed at its id (ids are dense,
  // so this is a pass, not a sort); a duplicate id keeps the later record.
  std::array<std::vector<uint32_t>, kNumKinds> at;  // index into entities + 1, by id (0 = none)
  std::array<size_t, kShards> per_shard{};
  for (size_t i = 0; i < entities.size(); ++i) {
    const Ref r = entities[i].ref;
    if (!r.valid()) continue;
    auto& slots = at[int(r.kind())];
    if (slots.size() <= r.id()) slots.resize(std::max<size_t>(r.id() + 1, slots.size() * 2), 0);
    slots[r.id()] = uint32_t(i + 1);
    ++per_shard[ShardOf(entities[i].ext_id)];
  }
  for (size_t s = 0; s < kShards; ++s) {
    std::unique_lock lock(shards_[s].mu);
    shards_[s].map.reserve(shards_[s].map.size() + per_shard[s]);
  }
  std::unordered_map<DenseId, std::vector<DenseId>> items;  // creator -> its items, in id order
  batch_items_ = true;
  for (int k = 0; k < kNumKinds; ++k)
    for (uint32_t slot : at[k]) {
      if (slot == 0) continue;
      EntityRecord& e = entities[slot - 1];
      if (e.ref.kind() == Kind::kItem && e.creator.valid()) items[e.creator.id()].push_back(e.ref.id());
      Publish(std::move(e));
    }
  batch_items_ = false;
  for (auto& [creator, list] : items) {
    auto merged = std::make_shared<std::vector<DenseId>>(*ItemsOf(creator));
    merged->insert(merged->end(), list.begin(), list.end());
    creator_items_.Ensure(creator).store(std::move(merged));
  }
}

}  // namespace affinity
