// [batch]: how `affinity batch` builds a snapshot (its owner: batch/pipeline.h).
#pragma once

#include <cstdint>
#include <string>
#include "absl/status/status.h"
#include "base/settings.h"

namespace affinity {

struct BatchOptions {
  int threads = 0;                        // 0 = number of cores
  // Set by `affinity backfill`, not read from the configuration: only events
  // with from <= ts <= to are scanned (0: no bound).
  int64_t window_from_ms = 0, window_to_ms = 0;
  double popularity_half_life_hours = 72;  // decay of popularity counts
  int als_factors = 32;
  int als_iterations = 8;
  double als_lambda = 0.05;
  double als_alpha = 4.0;                 // confidence = 1 + alpha * log1p(weight)
  int coeng_neighbors = 200;              // neighbours kept per entity
  double coeng_shrinkage = 0.0;           // added to the similarity's denominator
  int coeng_min_support = 1;              // distinct co-engagers a pair needs to count as similar
  double coeng_user_exponent = 0.7;       // a co-engager counts 1 / degree^this
  double coeng_item_exponent = 0.65;      // similarity of neighbour j to anchor i divides by n_i^this ...
  double coeng_candidate_exponent = 0.35;  // ... and by n_j^this (-1: the same as coeng_item_exponent)
  int coeng_max_user_items = 300;          // most recent items per user used for co-engagement
  int coeng_max_item_users = 300;          // engagers per entity sampled
  int session_window = 5;                  // session co-engagement: pairs at most this many interactions apart ...
  double session_gap_hours = 24;           // ... and at most this long apart in one viewer's timeline
  int session_neighbors = 50;              // session neighbours kept per entity (0: not built)
  int hnsw_m = 16;
  int hnsw_ef_construction = 100;
  int walk_max_edges = 200;               // adjacency kept per node for random walks
  int popular_per_kind = 1000;            // length of each popularity list
  int keep_snapshots = 3;                 // older snapshot versions are removed

  static constexpr const char* kSection = "batch";
  // Its settings, for the configuration reader (base/settings.h).
  template <class Read>
  void Fields(Read& read) {
    read("batch", "threads", threads);
    read("batch", "popularity_half_life_hours", popularity_half_life_hours);
    read("batch", "als_factors", als_factors);
    read("batch", "als_iterations", als_iterations);
    read("batch", "als_lambda", als_lambda);
    read("batch", "als_alpha", als_alpha);
    read("batch", "coeng_neighbors", coeng_neighbors);
    read("batch", "coeng_shrinkage", coeng_shrinkage);
    read("batch", "coeng_min_support", coeng_min_support);
    read("batch", "coeng_user_exponent", coeng_user_exponent);
    read("batch", "coeng_item_exponent", coeng_item_exponent);
    read("batch", "coeng_candidate_exponent", coeng_candidate_exponent);
    read("batch", "coeng_max_user_items", coeng_max_user_items);
    read("batch", "coeng_max_item_users", coeng_max_item_users);
    read("batch", "session_window", session_window);
    read("batch", "session_gap_hours", session_gap_hours);
    read("batch", "session_neighbors", session_neighbors);
    read("batch", "hnsw_m", hnsw_m);
    read("batch", "hnsw_ef_construction", hnsw_ef_construction);
    read("batch", "walk_max_edges", walk_max_edges);
    read("batch", "popular_per_kind", popular_per_kind);
    read("batch", "keep_snapshots", keep_snapshots);
  }
  absl::Status Validate() const {
    auto bad = SettingError;
    if (als_factors < 2 || als_factors > 256) return bad("batch.als_factors must be 2..256");
    if (als_iterations < 1) return bad("batch.als_iterations must be >= 1");
    if (als_lambda <= 0) return bad("batch.als_lambda must be > 0");
    if (popularity_half_life_hours <= 0) return bad("batch.popularity_half_life_hours must be > 0");
    if (hnsw_m < 2) return bad("batch.hnsw_m must be >= 2");
    if (keep_snapshots < 1) return bad("batch.keep_snapshots must be >= 1");
    if (coeng_min_support < 1) return bad("batch.coeng_min_support must be >= 1");
    if (session_window < 1 || session_window > 100) return bad("batch.session_window must be 1..100");
    if (session_gap_hours <= 0) return bad("batch.session_gap_hours must be > 0");
    if (session_neighbors < 0 || session_neighbors > 1000) return bad("batch.session_neighbors must be 0..1000");
    return absl::OkStatus();
  }
};

}  // namespace affinity
