#include "config/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "access/trusted_proxies.h"
#include "base/settings_reader.h"
#include "base/status.h"
#include "base/strings.h"
#include "features/feature_settings.h"

namespace affinity {
namespace {

// [features.<group>] tables: ttl_seconds and protected per feature group
// (which groups exist is checked against the declared ones at start).
absl::Status ReadFeatureSettings(const toml::table& t, std::map<std::string, FeatureGroupSettings>* out) {
  auto bad = [](const std::string& m) { return absl::InvalidArgumentError("config: " + m); };
  const toml::node* node = t.get("features");
  if (!node) return absl::OkStatus();
  const toml::table* groups = node->as_table();
  if (!groups) return bad("features must be a table of [features.<group>] tables");
  for (const auto& [name, value] : *groups) {
    const std::string group(name.str());
    const toml::table* keys = value.as_table();
    if (!keys)
      return bad("features." + group + " must be a table ([features." + group + "] with ttl_seconds, protected)");
    FeatureGroupSettings& fs = (*out)[group];
    for (const auto& [key, v] : *keys) {
      const std::string k(key.str());
      if (k == "ttl_seconds") {
        if (!v.is_integer() || *v.value<int64_t>() < 0)
          return bad("features." + group + ".ttl_seconds must be an integer >= 0");
        fs.ttl_seconds = *v.value<int64_t>();
      } else if (k == "protected") {
        if (!v.is_boolean()) return bad("features." + group + ".protected must be true or false");
        fs.is_protected = *v.value<bool>() ? 1 : 0;
      } else {
        const std::string near = NearestName(k, {"ttl_seconds", "protected"});
        return bad("unknown setting features." + group + "." + k +
                   (near.empty() ? "" : "; did you mean " + near + "?"));
      }
    }
  }
  return absl::OkStatus();
}

// [actions] keys other than the built-in actions: each adds a configured action
// with that default weight (read through `read`, so a non-number is refused).
absl::Status ReadCustomActions(const toml::table& t, SettingsReader& read, ActionWeights* out) {
  auto bad = [](const std::string& m) { return absl::InvalidArgumentError("config: " + m); };
  static constexpr std::string_view kBuiltin[] = {"impression", "click", "like",     "play", "share",
                                                  "comment",    "follow", "unfollow", "hide"};
  const toml::table* actions = t["actions"].as_table();
  if (!actions) return absl::OkStatus();
  out->custom.clear();
  for (const auto& [key, value] : *actions) {
    std::string name(key.str());
    if (std::find(std::begin(kBuiltin), std::end(kBuiltin), name) != std::end(kBuiltin)) continue;
    if (!IsValidActionName(name))
      return bad(absl::StrCat("actions.", name, ": an action's name is 1-", kMaxActionNameBytes,
                              " characters of a-z, 0-9 and _"));
    CustomAction action{name, 0};
    read("actions", name.c_str(), action.weight);
    if (!std::isfinite(action.weight) || std::fabs(action.weight) > 1e6)
      return bad(absl::StrCat("actions.", name, " must be a finite number within +-1e6"));
    out->custom.push_back(std::move(action));
  }
  // 9..255 are the codes of configured actions (docs/storage.md).
  if (out->custom.size() > 200) return bad("[actions] may add at most 200 actions");
  return absl::OkStatus();
}

// [auth] keys = [{ name, sha256, scopes, rate_per_s }]: the API keys (each
// key's SHA-256, never the key).
absl::Status ReadAuth(const toml::table& t, SettingsReader& read, AuthOptions* out) {
  auto bad = [](const std::string& m) { return absl::InvalidArgumentError("config: " + m); };
  read.MarkRead("auth", "keys");
  const toml::node* node = t["auth"]["keys"].node();
  if (!node) return absl::OkStatus();
  const toml::array* keys = node->as_array();
  if (!keys) return bad("auth.keys must be an array of { name, sha256, scopes } tables");
  out->keys.clear();
  for (size_t i = 0; i < keys->size(); ++i) {
    const std::string where = absl::StrCat("auth.keys[", i, "]");
    const toml::table* k = (*keys)[i].as_table();
    if (!k) return bad(where + " must be a table { name, sha256, scopes }");
    ApiKey key;
    for (const auto& [field, value] : *k) {
      const std::string f(field.str());
      if (f == "name" && value.is_string()) {
        key.name = *value.value<std::string>();
      } else if (f == "sha256" && value.is_string()) {
        auto digest = ParseSha256Hex(*value.value<std::string>());
        if (!digest.ok()) return bad(where + ".sha256: " + std::string(digest.status().message()));
        key.sha256 = *digest;
      } else if (f == "scopes" && value.is_array()) {
        std::vector<std::string> names;
        for (const auto& s : *value.as_array()) {
          if (!s.is_string()) return bad(where + ".scopes must be an array of strings");
          names.push_back(*s.value<std::string>());
        }
        auto bits = ParseScopes(names);
        if (!bits.ok()) return bad(where + ".scopes: " + std::string(bits.status().message()));
        key.scopes = *bits;
      } else if (f == "rate_per_s" && value.is_number()) {
        key.rate_per_s = *value.value<double>();
        if (!(key.rate_per_s >= 0)) return bad(where + ".rate_per_s must be >= 0");
      } else if (f == "name" || f == "sha256" || f == "scopes" || f == "rate_per_s") {
        return bad(where + "." + f + " has the wrong type");
      } else {
        const std::string near = NearestName(f, {"name", "sha256", "scopes", "rate_per_s"});
        return bad("unknown setting " + where + "." + f + (near.empty() ? "" : "; did you mean " + near + "?"));
      }
    }
    if (key.name.empty() || !IsValidActionName(key.name)) return bad(where + ".name must be 1-32 characters of a-z, 0-9 and _");
    if (key.scopes == 0) return bad(where + ".scopes must name at least one scope");
    for (const ApiKey& other : out->keys) {
      if (other.name == key.name) return bad(where + ": a second key named '" + key.name + "'");
      if (other.sha256 == key.sha256) return bad(where + ": the same key as '" + other.name + "'");
    }
    if (key.sha256 == std::array<uint8_t, 32>{}) return bad(where + " needs its sha256");
    out->keys.push_back(std::move(key));
  }
  return absl::OkStatus();
}

// Reads a parsed file's settings over *out and validates the result.
absl::Status ReadTable(const toml::table& t, Config* out) {
  Config& c = *out;
  SettingsReader read(t);
  c.server.Fields(read);
  c.serving.Fields(read);
  c.actions.Fields(read);
  AFF_RETURN_IF_ERROR(ReadCustomActions(t, read, &c.actions));
  c.batch.Fields(read);
  c.ranker.Fields(read);
  c.audit.Fields(read);
  c.events.Fields(read);
  c.storage.Fields(read);
  c.state.Fields(read);
  c.experiments.Fields(read);
  c.drift.Fields(read);
  AFF_RETURN_IF_ERROR(ReadFeatureSettings(t, &c.features));
  AFF_RETURN_IF_ERROR(ReadAuth(t, read, &c.auth));
  AFF_RETURN_IF_ERROR(read.Problem());
  return c.Validate();
}

}  // namespace

absl::Status Config::Validate() const {
  AFF_RETURN_IF_ERROR(server.Validate());
  if (auto proxies = TrustedProxies::Parse(server.trusted_proxies); !proxies.ok())
    return SettingError("server.trusted_proxies: " + std::string(proxies.status().message()));
  AFF_RETURN_IF_ERROR(serving.Validate());
  AFF_RETURN_IF_ERROR(batch.Validate());
  AFF_RETURN_IF_ERROR(ranker.Validate());
  AFF_RETURN_IF_ERROR(audit.Validate());
  AFF_RETURN_IF_ERROR(events.Validate());
  AFF_RETURN_IF_ERROR(storage.Validate());
  AFF_RETURN_IF_ERROR(state.Validate());
  AFF_RETURN_IF_ERROR(experiments.Validate());
  return drift.Validate();
}

absl::StatusOr<Config> Config::FromTomlString(const std::string& text) {
  toml::table t;
  try {
    t = toml::parse(text);
  } catch (const toml::parse_error& e) {
    const auto& at = e.source().begin;
    return absl::InvalidArgumentError(absl::StrCat("config: line ", at.line, ", column ", at.column, ": ",
                                                   std::string(e.description())));
  }
  Config c;
  AFF_RETURN_IF_ERROR(ReadTable(t, &c));
  return c;
}

absl::StatusOr<Config> Config::WithOverrides(const std::vector<std::pair<std::string, ConfigValue>>& overrides) const {
  AFF_ASSIGN_OR_RETURN(toml::table t, OverridesTable(overrides));
  Config c = *this;
  AFF_RETURN_IF_ERROR(ReadTable(t, &c));
  return c;
}

absl::StatusOr<Config> Config::FromTomlFile(const std::string& path) {
  toml::table t;
  std::string text;
  {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return absl::NotFoundError("config: cannot open " + path);
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
    std::fclose(f);
  }
  return FromTomlString(text);
}

StoreOptions StoreOptionsFor(const Config& config, const Clock* clock) {
  return {.audit_retention_ms = int64_t(config.audit.retention_hours) * 3'600'000,
          .clock = clock,
          .event_retention_ms = int64_t(config.events.retention_hours) * 3'600'000,
          .max_wal_bytes = uint64_t(config.storage.max_wal_mb) << 20,
          .idempotency_window_ms = int64_t(config.server.idempotency_window_seconds) * 1000};
}

}  // namespace affinity
