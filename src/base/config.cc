#include "base/config.h"

#include <toml++/toml.h>

#include "base/status.h"

namespace affinity {
namespace {

template <typename T>
void Read(const toml::table& t, const char* section, const char* key, T& field) {
  if (auto v = t[section][key].value<T>()) field = *v;
}

}  // namespace

absl::Status Config::Validate() const {
  auto bad = [](const std::string& m) { return absl::InvalidArgumentError("config: " + m); };
  if (server.port < 0 || server.port > 65535) return bad("server.port must be 0..65535");
  if (server.threads < 0) return bad("server.threads must be >= 0");
  if (server.max_body_bytes < 1024) return bad("server.max_body_bytes must be >= 1024");
  if (serving.deadline_ms < 1) return bad("serving.deadline_ms must be >= 1");
  if (serving.max_candidates < 1) return bad("serving.max_candidates must be >= 1");
  if (serving.max_anchors < 1 || serving.max_anchors > 65535) return bad("serving.max_anchors must be 1..65535");
  if (serving.per_creator_cap < 0) return bad("serving.per_creator_cap must be >= 0");
  if (serving.snapshot_poll_ms < 10) return bad("serving.snapshot_poll_ms must be >= 10");
  if (batch.als_factors < 2 || batch.als_factors > 256) return bad("batch.als_factors must be 2..256");
  if (batch.als_iterations < 1) return bad("batch.als_iterations must be >= 1");
  if (batch.als_lambda <= 0) return bad("batch.als_lambda must be > 0");
  if (batch.popularity_half_life_hours <= 0) return bad("batch.popularity_half_life_hours must be > 0");
  if (batch.hnsw_m < 2) return bad("batch.hnsw_m must be >= 2");
  if (batch.keep_snapshots < 1) return bad("batch.keep_snapshots must be >= 1");
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
  if (ranker.gate_tolerance < 0) return bad("ranker.gate_tolerance must be >= 0");
  if (ranker.subsample <= 0 || ranker.subsample > 1) return bad("ranker.subsample must be in (0, 1]");
  if (ranker.colsample_bynode <= 0 || ranker.colsample_bynode > 1) return bad("ranker.colsample_bynode must be in (0, 1]");
  if (!(serving.diversity >= 0 && serving.diversity < 1)) return bad("serving.diversity must be in [0, 1)");
  if (!(serving.new_creator_share >= 0 && serving.new_creator_share <= 1))
    return bad("serving.new_creator_share must be in [0, 1]");
  if (!(serving.log_ranker_inputs_share >= 0 && serving.log_ranker_inputs_share <= 1))
    return bad("serving.log_ranker_inputs_share must be in [0, 1]");
  if (serving.rerank_depth < 1) return bad("serving.rerank_depth must be >= 1");
  if (serving.diversity_window < 1) return bad("serving.diversity_window must be >= 1");
  if (serving.attribution_method != "treeshap" && serving.attribution_method != "saabas")
    return bad("serving.attribution_method must be treeshap or saabas");
  return absl::OkStatus();
}

absl::StatusOr<Config> Config::FromTomlString(const std::string& text) {
  toml::table t;
  try {
    t = toml::parse(text);
  } catch (const toml::parse_error& e) {
    return absl::InvalidArgumentError(std::string("config: ") + std::string(e.description()));
  }
  Config c;
  Read(t, "server", "host", c.server.host);
  Read(t, "server", "port", c.server.port);
  Read(t, "server", "threads", c.server.threads);
  Read(t, "server", "max_body_bytes", c.server.max_body_bytes);
  Read(t, "server", "max_events_per_batch", c.server.max_events_per_batch);
  auto& s = c.serving;
  Read(t, "serving", "deadline_ms", s.deadline_ms);
  Read(t, "serving", "max_candidates", s.max_candidates);
  Read(t, "serving", "per_creator_cap", s.per_creator_cap);
  Read(t, "serving", "snapshot_poll_ms", s.snapshot_poll_ms);
  Read(t, "serving", "diversity", s.diversity);
  Read(t, "serving", "diversity_window", s.diversity_window);
  Read(t, "serving", "new_creator_share", s.new_creator_share);
  Read(t, "serving", "new_creator_max_audience", s.new_creator_max_audience);
  Read(t, "serving", "rerank_depth", s.rerank_depth);
  Read(t, "serving", "graph_budget", s.graph_budget);
  Read(t, "serving", "walk_budget", s.walk_budget);
  Read(t, "serving", "walk_steps", s.walk_steps);
  Read(t, "serving", "max_anchors", s.max_anchors);
  Read(t, "serving", "anchor_half_life_hours", s.anchor_half_life_hours);
  Read(t, "serving", "anchor_older_share", s.anchor_older_share);
  Read(t, "serving", "anchor_step_decay", s.anchor_step_decay);
  Read(t, "serving", "anchor_min_weight", s.anchor_min_weight);
  Read(t, "serving", "ann_budget", s.ann_budget);
  Read(t, "serving", "coeng_budget", s.coeng_budget);
  Read(t, "serving", "coeng_session_weight", s.coeng_session_weight);
  Read(t, "serving", "popular_budget", s.popular_budget);
  Read(t, "serving", "ann_ef_search", s.ann_ef_search);
  Read(t, "serving", "w_graph", s.w_graph);
  Read(t, "serving", "w_graph_users", s.w_graph_users);
  Read(t, "serving", "w_walk", s.w_walk);
  Read(t, "serving", "w_ann", s.w_ann);
  Read(t, "serving", "w_coeng", s.w_coeng);
  Read(t, "serving", "w_popular", s.w_popular);
  Read(t, "serving", "w_trending", s.w_trending);
  Read(t, "serving", "w_creator_affinity", s.w_creator_affinity);
  Read(t, "serving", "w_seen_penalty", s.w_seen_penalty);
  auto& a = c.actions;
  Read(t, "actions", "impression", a.impression);
  Read(t, "actions", "click", a.click);
  Read(t, "actions", "like", a.like);
  Read(t, "actions", "play", a.play);
  Read(t, "actions", "share", a.share);
  Read(t, "actions", "comment", a.comment);
  Read(t, "actions", "follow", a.follow);
  Read(t, "actions", "unfollow", a.unfollow);
  Read(t, "actions", "hide", a.hide);
  auto& b = c.batch;
  Read(t, "batch", "threads", b.threads);
  Read(t, "batch", "popularity_half_life_hours", b.popularity_half_life_hours);
  Read(t, "batch", "als_factors", b.als_factors);
  Read(t, "batch", "als_iterations", b.als_iterations);
  Read(t, "batch", "als_lambda", b.als_lambda);
  Read(t, "batch", "als_alpha", b.als_alpha);
  Read(t, "batch", "coeng_neighbors", b.coeng_neighbors);
  Read(t, "batch", "coeng_shrinkage", b.coeng_shrinkage);
  Read(t, "batch", "coeng_user_exponent", b.coeng_user_exponent);
  Read(t, "batch", "coeng_item_exponent", b.coeng_item_exponent);
  Read(t, "batch", "coeng_candidate_exponent", b.coeng_candidate_exponent);
  Read(t, "batch", "coeng_max_user_items", b.coeng_max_user_items);
  Read(t, "batch", "coeng_max_item_users", b.coeng_max_item_users);
  Read(t, "batch", "session_window", b.session_window);
  Read(t, "batch", "session_gap_hours", b.session_gap_hours);
  Read(t, "batch", "session_neighbors", b.session_neighbors);
  Read(t, "batch", "hnsw_m", b.hnsw_m);
  Read(t, "batch", "hnsw_ef_construction", b.hnsw_ef_construction);
  Read(t, "batch", "walk_max_edges", b.walk_max_edges);
  Read(t, "batch", "popular_per_kind", b.popular_per_kind);
  Read(t, "batch", "keep_snapshots", b.keep_snapshots);
  auto& r = c.ranker;
  Read(t, "ranker", "rounds", r.rounds);
  Read(t, "ranker", "max_depth", r.max_depth);
  Read(t, "ranker", "eta", r.eta);
  Read(t, "ranker", "pair_samples", r.pair_samples);
  Read(t, "ranker", "margin_scale", r.margin_scale);
  Read(t, "ranker", "min_child_weight", r.min_child_weight);
  Read(t, "ranker", "subsample", r.subsample);
  Read(t, "ranker", "colsample_bynode", r.colsample_bynode);
  Read(t, "ranker", "objective", r.objective);
  Read(t, "ranker", "threads", r.threads);
  Read(t, "ranker", "max_groups", r.max_groups);
  Read(t, "ranker", "validation_share", r.validation_share);
  Read(t, "ranker", "training_slices", r.training_slices);
  Read(t, "ranker", "gate_tolerance", r.gate_tolerance);
  Read(t, "ranker", "label_window_hours", r.label_window_hours);
  Read(t, "ranker", "train_in_batch", r.train_in_batch);
  Read(t, "ranker", "auto_promote", r.auto_promote);
  Read(t, "ranker", "min_groups", r.min_groups);
  Read(t, "serving", "log_ranker_inputs_share", s.log_ranker_inputs_share);
  Read(t, "serving", "attribution_method", s.attribution_method);
  AFF_RETURN_IF_ERROR(c.Validate());
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

}  // namespace affinity
