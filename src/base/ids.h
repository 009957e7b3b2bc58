// Entity kinds and dense ids. Every entity has an external string id and a dense
// 32-bit id within its kind; hot structures are indexed by dense id. A Ref packs
// kind and dense id into one 32-bit word.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace affinity {

enum class Kind : uint8_t { kUser = 0, kCreator = 1, kItem = 2 };
inline constexpr int kNumKinds = 3;

inline std::string_view KindName(Kind k) {
  switch (k) {
    case Kind::kUser: return "user";
    case Kind::kCreator: return "creator";
    case Kind::kItem: return "item";
  }
  return "?";
}

// Parses "user", "creator", "item" and the plural target names.
inline std::optional<Kind> ParseKind(std::string_view s) {
  if (s == "user" || s == "users") return Kind::kUser;
  if (s == "creator" || s == "creators") return Kind::kCreator;
  if (s == "item" || s == "items") return Kind::kItem;
  return std::nullopt;
}

using DenseId = uint32_t;
inline constexpr DenseId kMaxDenseId = (1u << 30) - 1;

struct Ref {
  uint32_t bits = 0xFFFFFFFFu;

  constexpr Ref() = default;
  constexpr Ref(Kind k, DenseId id) : bits((uint32_t(k) << 30) | id) {}
  static constexpr Ref FromBits(uint32_t b) { Ref r; r.bits = b; return r; }

  constexpr Kind kind() const { return Kind(bits >> 30); }
  constexpr DenseId id() const { return bits & kMaxDenseId; }
  constexpr bool valid() const { return bits != 0xFFFFFFFFu; }
  friend constexpr bool operator==(Ref a, Ref b) { return a.bits == b.bits; }
  friend constexpr bool operator<(Ref a, Ref b) { return a.bits < b.bits; }
};

struct RefHash {
  size_t operator()(Ref r) const { return std::hash<uint32_t>()(r.bits * 2654435761u); }
};

}  // namespace affinity
