// The spellings of an enumerated state, in one table per enum: its name (as
// JSON, the configuration and the command line write it) and the parse back.
//   inline constexpr EnumNames<Mode, 2> kModeNames{{{Mode::kOn, "on"}, {Mode::kOff, "off"}}};
//   kModeNames.Name(Mode::kOn) == "on"; kModeNames.Parse("off") == Mode::kOff.
// Thread safety: constant data.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace affinity {

template <typename E, size_t N>
struct EnumNames {
  std::array<std::pair<E, std::string_view>, N> names;

  // The state's spelling ("" for a value outside the table).
  constexpr std::string_view Name(E e) const {
    for (const auto& [value, name] : names)
      if (value == e) return name;
    return "";
  }
  // The state spelled `name`; nullopt for another spelling.
  constexpr std::optional<E> Parse(std::string_view name) const {
    for (const auto& [value, n] : names)
      if (n == name) return value;
    return std::nullopt;
  }
  // "a, b or c": the spellings, for an error naming the choices.
  std::string Choices() const {
    std::string out;
    for (size_t i = 0; i < N; ++i) {
      if (i > 0) out += i + 1 == N ? " or " : ", ";
      out += names[i].second;
    }
    return out;
  }
};

}  // namespace affinity
