#include "base/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "base/strings.h"

namespace affinity {
namespace {

// Reads known keys into fields and remembers each one, so that a key the file
// sets which no field reads (a typo, a removed setting) or a value of the wrong
// type is refused by name instead of silently ignored.
class Reader {
 public:
  explicit Reader(const toml::table& t) : t_(t) {}

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
    } else {
      if (node->is_string()) v = node->value<T>();
    }
    if (v) {
      field = *v;
    } else if (error_.empty()) {
      const char* want = std::is_same_v<T, bool> ? "true or false"
                         : std::is_integral_v<T> ? "an integer"
                         : std::is_floating_point_v<T> ? "a number"
                                                      : "a string";
      error_ = absl::StrCat(section, ".", key, " must be ", want);
    }
  }

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
absl::Status ReadCustomActions(const toml::table& t, Reader& read, ActionWeights* out) {
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

// Reads a parsed file's settings over *out and validates the result.
absl::Status ReadTable(const toml::table& t, Config* out);

}  // namespace

bool IsValidActionName(std::string_view name) {
  if (name.empty() || name.size() > kMaxActionNameBytes) return false;
  for (char ch : name)
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_')) return false;
  return true;
}

absl::Status Config::Validate() const {
  auto bad = [](const std::string& m) { return absl::InvalidArgumentError("config: " + m); };
  if (server.port < 0 || server.port > 65535) return bad("server.port must be 0..65535");
  if (server.threads < 0) return bad("server.threads must be >= 0");
  if (server.max_body_bytes < 1024) return bad("server.max_body_bytes must be >= 1024");
  if (server.max_connections < 0) return bad("server.max_connections must be >= 0 (0 = half the descriptor limit)");
  if (server.header_timeout_ms < 1 || server.idle_timeout_ms < 1 || server.body_timeout_ms < 1)
    return bad("server.header_timeout_ms, idle_timeout_ms and body_timeout_ms must be >= 1");
  if (server.idempotency_window_seconds < 1 || server.idempotency_window_seconds > 2'592'000)
    return bad("server.idempotency_window_seconds must be 1..2592000 (30 days)");
  if (serving.deadline_ms < 1) return bad("serving.deadline_ms must be >= 1");
  if (serving.max_candidates < 1) return bad("serving.max_candidates must be >= 1");
  if (serving.max_anchors < 1 || serving.max_anchors > 65535) return bad("serving.max_anchors must be 1..65535");
  if (serving.per_creator_cap < 0) return bad("serving.per_creator_cap must be >= 0");
  if (serving.similar_min_support < 1) return bad("serving.similar_min_support must be >= 1");
  if (serving.snapshot_poll_ms < 10) return bad("serving.snapshot_poll_ms must be >= 10");
  if (batch.als_factors < 2 || batch.als_factors > 256) return bad("batch.als_factors must be 2..256");
  if (batch.als_iterations < 1) return bad("batch.als_iterations must be >= 1");
  if (batch.als_lambda <= 0) return bad("batch.als_lambda must be > 0");
  if (batch.popularity_half_life_hours <= 0) return bad("batch.popularity_half_life_hours must be > 0");
  if (batch.hnsw_m < 2) return bad("batch.hnsw_m must be >= 2");
  if (batch.keep_snapshots < 1) return bad("batch.keep_snapshots must be >= 1");
  if (batch.coeng_min_support < 1) return bad("batch.coeng_min_support must be >= 1");
  if (serving.coeng_session_weight < 0) return bad("serving.coeng_session_weight must be >= 0");
  if (batch.session_window < 1 || batch.session_window > 100) return bad("batch.session_window must be 1..100");
  if (batch.session_gap_hours <= 0) return bad("batch.session_gap_hours must be > 0");
  if (batch.session_neighbors < 0 || batch.session_neighbors > 1000) return bad("batch.session_neighbors must be 0..1000");
  if (ranker.rounds < 1 || ranker.rounds > 5000) return bad("ranker.rounds must be 1..5000");
  if (ranker.max_depth < 1 || ranker.max_depth > 16) return bad("ranker.max_depth must be 1..16");
  if (ranker.eta <= 0 || ranker.eta > 1) return bad("ranker.eta must be in (0, 1]");
  if (ranker.objective != "rank:ndcg" && ranker.objective != "rank:pairwise" && ranker.objective != "rank:map")
    return bad("ranker.objective must be rank:ndcg, rank:pairwise or rank:map");
  if (ranker.validation_share <= 0 || ranker.validation_share >= 1) return bad("ranker.validation_share must be in (0, 1)");
  if (ranker.training_slices < 1 || ranker.training_slices * ranker.validation_share >= 0.8)
    return bad("ranker.training_slices must be >= 1 and leave at least a fifth of each line to the oldest slice's world");
  if (ranker.random_slices < 0 || ranker.random_slices > 4) return bad("ranker.random_slices must be 0..4");
  if (!(ranker.random_slice_groups > 0 && ranker.random_slice_groups <= 1))
    return bad("ranker.random_slice_groups must be in (0, 1]");
  if (ranker.gate_tolerance < 0) return bad("ranker.gate_tolerance must be >= 0");
  if (!(ranker.canary_share > 0 && ranker.canary_share < 100)) return bad("ranker.canary_share must be in (0, 100)");
  if (ranker.canary_min_viewers < 1) return bad("ranker.canary_min_viewers must be >= 1");
  if (!(ranker.canary_max_increase > 0)) return bad("ranker.canary_max_increase must be > 0");
  if (!(ranker.canary_max_latency_increase > 0)) return bad("ranker.canary_max_latency_increase must be > 0");
  if (ranker.subsample <= 0 || ranker.subsample > 1) return bad("ranker.subsample must be in (0, 1]");
  if (ranker.colsample_bynode <= 0 || ranker.colsample_bynode > 1) return bad("ranker.colsample_bynode must be in (0, 1]");
  if (!(serving.diversity >= 0 && serving.diversity < 1)) return bad("serving.diversity must be in [0, 1)");
  if (!(serving.new_creator_share >= 0 && serving.new_creator_share <= 1))
    return bad("serving.new_creator_share must be in [0, 1]");
  if (!(serving.log_ranker_inputs_share >= 0 && serving.log_ranker_inputs_share <= 1))
    return bad("serving.log_ranker_inputs_share must be in [0, 1]");
  if (serving.rerank_depth < 1) return bad("serving.rerank_depth must be >= 1");
  if (serving.diversity_window < 1) return bad("serving.diversity_window must be >= 1");
  if (audit.retention_hours < 0) return bad("audit.retention_hours must be >= 0");
  if (audit.checkpoint_interval_seconds < 1) return bad("audit.checkpoint_interval_seconds must be >= 1");
  if (events.retention_hours < 0) return bad("events.retention_hours must be >= 0");
  if (storage.min_free_mb < 0) return bad("storage.min_free_mb must be >= 0");
  if (storage.max_wal_mb < 16) return bad("storage.max_wal_mb must be >= 16");
  if (storage.poll_ms < 50) return bad("storage.poll_ms must be >= 50");
  if (state.checkpoint_interval_seconds < 0) return bad("state.checkpoint_interval_seconds must be >= 0");
  if (state.checkpoint_after_events < 0) return bad("state.checkpoint_after_events must be >= 0");
  if (!(experiments.attribution_hours > 0)) return bad("experiments.attribution_hours must be > 0");
  if (!(experiments.msprt_tau_relative > 0)) return bad("experiments.msprt_tau_relative must be > 0");
  if (!(experiments.guardrail_alpha > 0 && experiments.guardrail_alpha < 1))
    return bad("experiments.guardrail_alpha must be in (0, 1)");
  if (experiments.guardrail_min_responses < 1) return bad("experiments.guardrail_min_responses must be >= 1");
  if (experiments.guardrail_poll_ms < 10) return bad("experiments.guardrail_poll_ms must be >= 10");
  if (!(drift.psi_threshold > 0)) return bad("drift.psi_threshold must be > 0");
  if (!(drift.p_value > 0 && drift.p_value < 1)) return bad("drift.p_value must be in (0, 1)");
  if (drift.min_rows < 1) return bad("drift.min_rows must be >= 1");
  if (drift.poll_ms < 100) return bad("drift.poll_ms must be >= 100");
  return absl::OkStatus();
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
  Config c = *this;
  AFF_RETURN_IF_ERROR(ReadTable(t, &c));
  return c;
}

namespace {
// The [serving] and [ranker] sections (ReadTable's).
void ReadServing(Reader& read, ServingOptions& s) {
  read("serving", "deadline_ms", s.deadline_ms);
  read("serving", "max_candidates", s.max_candidates);
  read("serving", "per_creator_cap", s.per_creator_cap);
  read("serving", "similar_min_support", s.similar_min_support);
  read("serving", "snapshot_poll_ms", s.snapshot_poll_ms);
  read("serving", "diversity", s.diversity);
  read("serving", "diversity_window", s.diversity_window);
  read("serving", "new_creator_share", s.new_creator_share);
  read("serving", "new_creator_max_audience", s.new_creator_max_audience);
  read("serving", "rerank_depth", s.rerank_depth);
  read("serving", "graph_budget", s.graph_budget);
  read("serving", "walk_budget", s.walk_budget);
  read("serving", "walk_steps", s.walk_steps);
  read("serving", "max_anchors", s.max_anchors);
  read("serving", "anchor_half_life_hours", s.anchor_half_life_hours);
  read("serving", "anchor_older_share", s.anchor_older_share);
  read("serving", "anchor_step_decay", s.anchor_step_decay);
  read("serving", "anchor_min_weight", s.anchor_min_weight);
  read("serving", "ann_budget", s.ann_budget);
  read("serving", "coeng_budget", s.coeng_budget);
  read("serving", "coeng_session_weight", s.coeng_session_weight);
  read("serving", "popular_budget", s.popular_budget);
  read("serving", "ann_ef_search", s.ann_ef_search);
  read("serving", "w_graph", s.w_graph);
  read("serving", "w_graph_users", s.w_graph_users);
  read("serving", "w_walk", s.w_walk);
  read("serving", "w_ann", s.w_ann);
  read("serving", "w_coeng", s.w_coeng);
  read("serving", "w_popular", s.w_popular);
  read("serving", "w_trending", s.w_trending);
  read("serving", "w_creator_affinity", s.w_creator_affinity);
  read("serving", "w_seen_penalty", s.w_seen_penalty);
  read("serving", "log_ranker_inputs_share", s.log_ranker_inputs_share);
  read("serving", "attribution_method", s.attribution_method, kAttributionMethodNames);
}

void ReadRanker(Reader& read, RankerOptions& r) {
  read("ranker", "rounds", r.rounds);
  read("ranker", "max_depth", r.max_depth);
  read("ranker", "eta", r.eta);
  read("ranker", "pair_samples", r.pair_samples);
  read("ranker", "margin_scale", r.margin_scale);
  read("ranker", "min_child_weight", r.min_child_weight);
  read("ranker", "subsample", r.subsample);
  read("ranker", "colsample_bynode", r.colsample_bynode);
  read("ranker", "objective", r.objective);
  read("ranker", "threads", r.threads);
  read("ranker", "max_groups", r.max_groups);
  read("ranker", "validation_share", r.validation_share);
  read("ranker", "training_slices", r.training_slices);
  read("ranker", "random_slices", r.random_slices);
  read("ranker", "monotone", r.monotone);
  read("ranker", "random_slice_groups", r.random_slice_groups);
  read("ranker", "gate_tolerance", r.gate_tolerance);
  read("ranker", "label_window_hours", r.label_window_hours);
  read("ranker", "train_in_batch", r.train_in_batch);
  read("ranker", "auto_promote", r.auto_promote);
  read("ranker", "rollout", r.rollout, kRolloutModeNames);
  read("ranker", "canary_share", r.canary_share);
  read("ranker", "canary_min_viewers", r.canary_min_viewers);
  read("ranker", "canary_max_increase", r.canary_max_increase);
  read("ranker", "canary_max_latency_increase", r.canary_max_latency_increase);
  read("ranker", "min_groups", r.min_groups);
  read("ranker", "stream_inputs", r.stream_inputs, kStreamInputsNames);
}

absl::Status ReadTable(const toml::table& t, Config* out) {
  Config& c = *out;
  Reader read(t);
  read("server", "host", c.server.host);
  read("server", "port", c.server.port);
  read("server", "threads", c.server.threads);
  read("server", "max_body_bytes", c.server.max_body_bytes);
  read("server", "max_events_per_batch", c.server.max_events_per_batch);
  read("server", "idempotency_window_seconds", c.server.idempotency_window_seconds);
  read("server", "max_connections", c.server.max_connections);
  read("server", "header_timeout_ms", c.server.header_timeout_ms);
  read("server", "idle_timeout_ms", c.server.idle_timeout_ms);
  read("server", "body_timeout_ms", c.server.body_timeout_ms);
  ReadServing(read, c.serving);
  auto& a = c.actions;
  read("actions", "impression", a.impression);
  read("actions", "click", a.click);
  read("actions", "like", a.like);
  read("actions", "play", a.play);
  read("actions", "share", a.share);
  read("actions", "comment", a.comment);
  read("actions", "follow", a.follow);
  read("actions", "unfollow", a.unfollow);
  read("actions", "hide", a.hide);
  AFF_RETURN_IF_ERROR(ReadCustomActions(t, read, &a));
  auto& b = c.batch;
  read("batch", "threads", b.threads);
  read("batch", "popularity_half_life_hours", b.popularity_half_life_hours);
  read("batch", "als_factors", b.als_factors);
  read("batch", "als_iterations", b.als_iterations);
  read("batch", "als_lambda", b.als_lambda);
  read("batch", "als_alpha", b.als_alpha);
  read("batch", "coeng_neighbors", b.coeng_neighbors);
  read("batch", "coeng_shrinkage", b.coeng_shrinkage);
  read("batch", "coeng_min_support", b.coeng_min_support);
  read("batch", "coeng_user_exponent", b.coeng_user_exponent);
  read("batch", "coeng_item_exponent", b.coeng_item_exponent);
  read("batch", "coeng_candidate_exponent", b.coeng_candidate_exponent);
  read("batch", "coeng_max_user_items", b.coeng_max_user_items);
  read("batch", "coeng_max_item_users", b.coeng_max_item_users);
  read("batch", "session_window", b.session_window);
  read("batch", "session_gap_hours", b.session_gap_hours);
  read("batch", "session_neighbors", b.session_neighbors);
  read("batch", "hnsw_m", b.hnsw_m);
  read("batch", "hnsw_ef_construction", b.hnsw_ef_construction);
  read("batch", "walk_max_edges", b.walk_max_edges);
  read("batch", "popular_per_kind", b.popular_per_kind);
  read("batch", "keep_snapshots", b.keep_snapshots);
  ReadRanker(read, c.ranker);
  read("audit", "retention_hours", c.audit.retention_hours);
  read("audit", "signing_key", c.audit.signing_key);
  read("audit", "checkpoint_interval_seconds", c.audit.checkpoint_interval_seconds);
  read("events", "retention_hours", c.events.retention_hours);
  read("storage", "min_free_mb", c.storage.min_free_mb);
  read("storage", "max_wal_mb", c.storage.max_wal_mb);
  read("storage", "poll_ms", c.storage.poll_ms);
  read("state", "checkpoint_interval_seconds", c.state.checkpoint_interval_seconds);
  read("state", "checkpoint_after_events", c.state.checkpoint_after_events);
  auto& x = c.experiments;
  read("experiments", "attribution_hours", x.attribution_hours);
  read("experiments", "msprt_tau_relative", x.msprt_tau_relative);
  read("experiments", "guardrail_alpha", x.guardrail_alpha);
  read("experiments", "guardrail_min_responses", x.guardrail_min_responses);
  read("experiments", "guardrail_poll_ms", x.guardrail_poll_ms);
  read("experiments", "force_arm_header", x.force_arm_header);
  read("drift", "psi_threshold", c.drift.psi_threshold);
  read("drift", "p_value", c.drift.p_value);
  read("drift", "min_rows", c.drift.min_rows);
  read("drift", "poll_ms", c.drift.poll_ms);
  AFF_RETURN_IF_ERROR(ReadFeatureSettings(t, &c.features));
  AFF_RETURN_IF_ERROR(read.Problem());
  return c.Validate();
}
}  // namespace

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

}  // namespace affinity
