// The settings of the server, the query pipeline and the actions: what every
// serving room reads. Each other component owns its options in its own room
// (base/settings.h says how); config/config.h gathers them all from the TOML
// file (`serve --config FILE`). Each field gives its unit and default; fields
// marked "reloadable" may change without a restart (none are reloaded yet:
// restart to apply).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "base/enum_names.h"
#include "base/settings.h"

namespace affinity {

// A setting's value as an override gives it (experiment arms).
using ConfigValue = std::variant<bool, int64_t, double, std::string>;

struct ServerOptions {
  std::string host = "127.0.0.1";  // listen address
  int port = 8080;                 // listen port; 0 picks a free one
  int threads = 0;                 // HTTP worker threads; 0 = number of cores
  int64_t max_body_bytes = 8 << 20;  // larger request bodies get 413
  int max_events_per_batch = 10000;  // larger feedback batches get 413
  // Connections as a budget of descriptors. Past max_connections a new
  // connection closes the longest-waiting idle one (never-used first), or is
  // answered 503 and closed when every open one is busy. 0 = half the
  // process's descriptor limit (read at start). Not reloadable.
  int max_connections = 0;
  int header_timeout_ms = 10000;  // a request's header must be complete this long after its first byte
  int idle_timeout_ms = 60000;    // a connection waiting for a request is closed after this
  int body_timeout_ms = 60000;    // a request's body must arrive within this after its header
  // Connections one peer (the socket's address) may hold at once; past it a
  // new one from that peer is answered 503 and closed. 0 = no per-peer cap
  // (the default: behind a proxy every connection has the proxy's address).
  // Peers in trusted_proxies are exempt. Not reloadable.
  int max_connections_per_peer = 0;
  // Requests handled at once (health routes aside); past it 503 `overloaded`
  // with Retry-After: 1. 0 = 4 per core (docs/security.md, Limits). Not reloadable.
  int max_in_flight = 0;
  // Proxies whose X-Forwarded-For is believed: addresses or networks
  // ("10.0.0.0/8"). Default none: the client is the socket's peer.
  std::vector<std::string> trusted_proxies;
  // How long (seconds) a write's Idempotency-Key is remembered: a retry with the
  // key within this answers the first response instead of writing again. Default
  // 86400 (24 h), 1 to 2592000 (30 days); not reloadable (restart to apply).
  int64_t idempotency_window_seconds = 86400;
  // HTTPS: the certificate (chain) and its private key, PEM files. Both or
  // neither; unset serves plain HTTP. Read at start.
  std::string tls_cert;
  std::string tls_key;

  static constexpr const char* kSection = "server";
  template <class Read>
  void Fields(Read& read) {
    read("server", "host", host);
    read("server", "port", port);
    read("server", "threads", threads);
    read("server", "max_body_bytes", max_body_bytes);
    read("server", "max_events_per_batch", max_events_per_batch);
    read("server", "idempotency_window_seconds", idempotency_window_seconds);
    read("server", "max_connections", max_connections);
    read("server", "header_timeout_ms", header_timeout_ms);
    read("server", "idle_timeout_ms", idle_timeout_ms);
    read("server", "body_timeout_ms", body_timeout_ms);
    read("server", "max_connections_per_peer", max_connections_per_peer);
    read("server", "max_in_flight", max_in_flight);
    read("server", "trusted_proxies", trusted_proxies);
    read("server", "tls_cert", tls_cert);
    read("server", "tls_key", tls_key);
  }
  absl::Status Validate() const;
};

// The learned ranker's explanations (serving.attribution_method): path
// attributions (Saabas, cheaper) or exact TreeSHAP.
enum class AttributionMethod { kTreeShap, kSaabas };
inline constexpr EnumNames<AttributionMethod, 2> kAttributionMethodNames{
    {{{AttributionMethod::kTreeShap, "treeshap"}, {AttributionMethod::kSaabas, "saabas"}}}};
inline std::string_view AttributionMethodName(AttributionMethod m) { return kAttributionMethodNames.Name(m); }

struct ServingOptions {
  int deadline_ms = 50;          // per-request budget; best result found in time is returned
  int max_candidates = 500;      // cap on merged candidates before scoring
  int per_creator_cap = 3;       // max items of one creator in a response (0 = no cap)
  double diversity = 0.0;        // MMR weight in [0, 1): trades score for dissimilar results (0 = off)
  int diversity_window = 200;    // best candidates MMR considers
  double new_creator_share = 0.1;  // share of item/creator slots reserved for new creators (0 = off)
  int new_creator_max_audience = 20;  // a creator is new below this many engagers in the snapshot
  int rerank_depth = 100;        // the blend's best candidates the learned ranker re-scores
  double log_ranker_inputs_share = 0.25;  // share of audit records that keep each result's ranker inputs
                                         // (the training data of `affinity batch`); 1 = every response
  int snapshot_poll_ms = 1000;   // how often a server looks for a newer snapshot
  // Per-source candidate budgets.
  int graph_budget = 200;
  int walk_budget = 200;
  int walk_steps = 500;          // random-walk steps per query
  int max_anchors = 64;          // recent interactions and seeds expanded by co-engagement and walks
  double anchor_half_life_hours = 72;  // a recent interaction's anchor weight halves per this before the newest
  double anchor_older_share = 0.2;     // engagement older than the recent window, relative to a fresh one
  double anchor_step_decay = 0.8;      // ... and shrinks by this per newer interaction ...
  double anchor_min_weight = 0.2;      // ... never below this share
  int ann_budget = 100;
  int coeng_budget = 200;
  double coeng_session_weight = 0.05;  // session neighbours' weight inside co-engagement (0: whole-history only)
  int similar_min_support = 3;         // a co-engagement link with fewer distinct co-engagers is not called "similar"
  int popular_budget = 100;
  int ann_ef_search = 64;        // HNSW search breadth
  // Learned-ranker explanations (explain:true); explain:"full" always uses exact TreeSHAP.
  AttributionMethod attribution_method = AttributionMethod::kSaabas;
  // Blend weights: score = sum of weight * normalised feature. Defaults were tuned
  // on a validation slice of the Gowalla training split (docs/evaluation.md).
  double w_graph = 0.5;
  double w_graph_users = 10.0;   // the social graph's weight when recommending people
  double w_walk = 0.3;
  double w_ann = 0.5;
  double w_coeng = 5.0;
  double w_popular = 0.1;
  double w_trending = 0.2;
  double w_creator_affinity = 0.6;
  double w_seen_penalty = -4.0;  // candidate the viewer already engaged with

  static constexpr const char* kSection = "serving";
  template <class Read>
  void Fields(Read& read) {
    read("serving", "deadline_ms", deadline_ms);
    read("serving", "max_candidates", max_candidates);
    read("serving", "per_creator_cap", per_creator_cap);
    read("serving", "similar_min_support", similar_min_support);
    read("serving", "snapshot_poll_ms", snapshot_poll_ms);
    read("serving", "diversity", diversity);
    read("serving", "diversity_window", diversity_window);
    read("serving", "new_creator_share", new_creator_share);
    read("serving", "new_creator_max_audience", new_creator_max_audience);
    read("serving", "rerank_depth", rerank_depth);
    read("serving", "graph_budget", graph_budget);
    read("serving", "walk_budget", walk_budget);
    read("serving", "walk_steps", walk_steps);
    read("serving", "max_anchors", max_anchors);
    read("serving", "anchor_half_life_hours", anchor_half_life_hours);
    read("serving", "anchor_older_share", anchor_older_share);
    read("serving", "anchor_step_decay", anchor_step_decay);
    read("serving", "anchor_min_weight", anchor_min_weight);
    read("serving", "ann_budget", ann_budget);
    read("serving", "coeng_budget", coeng_budget);
    read("serving", "coeng_session_weight", coeng_session_weight);
    read("serving", "popular_budget", popular_budget);
    read("serving", "ann_ef_search", ann_ef_search);
    read("serving", "w_graph", w_graph);
    read("serving", "w_graph_users", w_graph_users);
    read("serving", "w_walk", w_walk);
    read("serving", "w_ann", w_ann);
    read("serving", "w_coeng", w_coeng);
    read("serving", "w_popular", w_popular);
    read("serving", "w_trending", w_trending);
    read("serving", "w_creator_affinity", w_creator_affinity);
    read("serving", "w_seen_penalty", w_seen_penalty);
    read("serving", "log_ranker_inputs_share", log_ranker_inputs_share);
    read("serving", "attribution_method", attribution_method, kAttributionMethodNames);
  }
  absl::Status Validate() const;
};

// `serving` with settings ("serving.diversity" -> 0.2) changed, checked as the
// file's would be (unknown keys, types, ranges): an experiment arm's serving.
absl::StatusOr<ServingOptions> ServingWithOverrides(const ServingOptions& serving,
                                                    const std::vector<std::pair<std::string, ConfigValue>>& overrides);

// An action the configuration adds to the built-in ones (`[actions] purchase = 3.0`):
// its name (1-32 characters of a-z, 0-9, '_') and default weight, whose sign is the
// action's: > 0 positive feedback (engagement, as a click), < 0 negative (as a hide).
struct CustomAction {
  std::string name;
  double weight = 0;
};

// Whether `name` may name a configured action: 1-32 characters of a-z, 0-9 and
// '_' (so that it reads the same in TOML, JSON and TSV).
inline constexpr size_t kMaxActionNameBytes = 32;
bool IsValidActionName(std::string_view name);

// Default weights per action (a feedback event without weight takes these).
struct ActionWeights {
  double impression = 0.0;
  double click = 1.0;
  double like = 2.0;
  double play = 1.0;
  double share = 2.5;
  double comment = 2.0;
  double follow = 3.0;
  double unfollow = -3.0;
  double hide = -5.0;
  // Configured actions beyond the built-in ones, in name order. Default: none.
  std::vector<CustomAction> custom;

  static constexpr const char* kSection = "actions";
  // The built-in actions' weights (configured ones are read by the configuration reader).
  template <class Read>
  void Fields(Read& read) {
    read("actions", "impression", impression);
    read("actions", "click", click);
    read("actions", "like", like);
    read("actions", "play", play);
    read("actions", "share", share);
    read("actions", "comment", comment);
    read("actions", "follow", follow);
    read("actions", "unfollow", unfollow);
    read("actions", "hide", hide);
  }

  // The configured action named so, or nullptr.
  const CustomAction* FindCustom(std::string_view name) const {
    for (const auto& c : custom)
      if (c.name == name) return &c;
    return nullptr;
  }
};

}  // namespace affinity
