// The configuration reader's side of base/settings.h: reads the fields an
// options struct lists from a parsed TOML table, remembering each key so that a
// key no field reads (a typo, a removed setting) or a value of the wrong type
// is refused by name instead of silently ignored. Used by config/config.cc and
// by ServingWithOverrides; components never include it.
#pragma once

#include <toml++/toml.h>

#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "base/config.h"
#include "base/enum_names.h"
#include "base/strings.h"

namespace affinity {

class SettingsReader {
 public:
  explicit SettingsReader(const toml::table& t) : t_(t) {}

  template <typename T>
  void operator()(const char* section, const char* key, T& field) {
    known_.insert(absl::StrCat(section, ".", key));
    const toml::node* node = t_[section][key].node();
    if (!node) return;
    std::optional<T> v;
    if constexpr (std::is_same_v<T, bool>) {
      if (node->is_boolean()) v = node->value<bool>();
    } else if constexpr (std::is_integral_v<T>) {
      if (node->is_integer()) v = node->value<T>();  // nullopt when out of T's range
    } else if constexpr (std::is_floating_point_v<T>) {
      if (node->is_number()) v = node->value<T>();
    } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
      if (const toml::array* items = node->as_array(); items && (items->empty() || items->is_homogeneous<std::string>())) {
        v.emplace();
        for (const toml::node& item : *items) v->push_back(*item.value<std::string>());
      }
    } else {
      if (node->is_string()) v = node->value<T>();
    }
    if (v) {
      field = *v;
    } else if (error_.empty()) {
      const char* want = std::is_same_v<T, bool> ? "true or false"
                         : std::is_integral_v<T> ? "an integer"
                         : std::is_floating_point_v<T> ? "a number"
                         : std::is_same_v<T, std::vector<std::string>> ? "an array of strings"
                                                      : "a string";
      error_ = absl::StrCat(section, ".", key, " must be ", want);
    }
  }

  // A key read by hand (an array of tables): known, so not refused as unknown.
  void MarkRead(const char* section, const char* key) { known_.insert(absl::StrCat(section, ".", key)); }

  // An enumerated setting: a string among `names`' spellings.
  template <typename E, size_t N>
  void operator()(const char* section, const char* key, E& field, const EnumNames<E, N>& names) {
    std::string spelled;
    const bool set = t_[section][key].node() != nullptr;
    (*this)(section, key, spelled);  // known, and a string
    if (!set || !error_.empty()) return;
    if (std::optional<E> v = names.Parse(spelled)) {
      field = *v;
    } else if (invalid_.empty()) {
      invalid_ = absl::StrCat(section, ".", key, " must be ", names.Choices());
    }
  }

  // "; did you mean X?" for the known setting closest to `name`, else "".
  std::string Nearest(const std::string& name) const {
    std::string best = NearestName(name, std::vector<std::string_view>(known_.begin(), known_.end()));
    return best.empty() ? "" : absl::StrCat("; did you mean ", best, "?");
  }

  // The first problem: a value of the wrong type, else a key no field reads,
  // else an enumerated setting spelled as none of its choices.
  absl::Status Problem() const {
    auto bad = [](const std::string& m) { return absl::InvalidArgumentError("config: " + m); };
    if (!error_.empty()) return bad(error_);
    for (const auto& [section, node] : t_) {
      const toml::table* keys = node.as_table();
      if (!keys) return bad(absl::StrCat("'", std::string(section.str()), "' is not a known section"));
      if (section.str() == "features") continue;  // [features.<group>]: read by ReadFeatureSettings
      for (const auto& [key, value] : *keys) {
        std::string name = absl::StrCat(std::string(section.str()), ".", std::string(key.str()));
        if (!known_.count(name)) return bad(absl::StrCat("unknown setting ", name, Nearest(name)));
      }
    }
    if (!invalid_.empty()) return bad(invalid_);
    return absl::OkStatus();
  }

 private:
  const toml::table& t_;
  std::set<std::string> known_;
  std::string error_;
  std::string invalid_;  // the first enumerated setting spelled as none of its choices
};

// Settings ("serving.diversity" -> 0.2) as the TOML table a file setting them
// would parse to; InvalidArgument for a name that is not section.key.
inline absl::StatusOr<toml::table> OverridesTable(const std::vector<std::pair<std::string, ConfigValue>>& overrides) {
  toml::table t;
  for (const auto& [name, value] : overrides) {
    const size_t dot = name.find('.');
    if (dot == std::string::npos || dot == 0 || dot + 1 == name.size())
      return absl::InvalidArgumentError("config: '" + name + "' is not a setting (section.key)");
    const std::string section = name.substr(0, dot), key = name.substr(dot + 1);
    if (!t.contains(section)) t.insert(section, toml::table{});
    toml::table& s = *t[section].as_table();
    std::visit([&](const auto& v) { s.insert_or_assign(key, v); }, value);
  }
  return t;
}

}  // namespace affinity
