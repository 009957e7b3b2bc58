// Configuration of every affinity component, read from a TOML file
// (`serve --config FILE`). Each field gives its unit and default; fields marked
// "reloadable" may change without a restart (none are reloaded yet: restart to apply).
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
  // How long (seconds) a write's Idempotency-Key is remembered: a retry with the
  // key within this answers the first response instead of writing again. Default
  // 86400 (24 h), 1 to 2592000 (30 days); not reloadable (restart to apply).
  int64_t idempotency_window_seconds = 86400;
};

// The learned ranker's explanations (serving.attribution_method): path
// attributions (Saabas, cheaper) or exact TreeSHAP.
enum class AttributionMethod { kTreeShap, kSaabas };
inline constexpr EnumNames<AttributionMethod, 2> kAttributionMethodNames{
    {{{AttributionMethod::kTreeShap, "treeshap"}, {AttributionMethod::kSaabas, "saabas"}}}};
inline std::string_view AttributionMethodName(AttributionMethod m) { return kAttributionMethodNames.Name(m); }

// How `affinity batch` ships a model that passes the gate (ranker.rollout): a
// canary experiment decides, or it is promoted at once.
enum class RolloutMode { kCanary, kDirect };
inline constexpr EnumNames<RolloutMode, 2> kRolloutModeNames{
    {{{RolloutMode::kCanary, "canary"}, {RolloutMode::kDirect, "direct"}}}};
inline std::string_view RolloutModeName(RolloutMode m) { return kRolloutModeNames.Name(m); }

// The streaming groups' inputs in training (ranker.stream_inputs): kAuto trains
// with and without them and keeps the better on held-out groups; kOn; kOff
// (never split on).
enum class StreamInputs { kAuto, kOn, kOff };
inline constexpr EnumNames<StreamInputs, 3> kStreamInputsNames{
    {{{StreamInputs::kAuto, "auto"}, {StreamInputs::kOn, "on"}, {StreamInputs::kOff, "off"}}}};
inline std::string_view StreamInputsName(StreamInputs s) { return kStreamInputsNames.Name(s); }

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
};

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

  // The configured action named so, or nullptr.
  const CustomAction* FindCustom(std::string_view name) const {
    for (const auto& c : custom)
      if (c.name == name) return &c;
    return nullptr;
  }
};

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
};

// The learned re-ranker (LambdaMART through XGBoost) and its training.
struct RankerOptions {
  int rounds = 100;                 // boosting rounds (trees)
  int max_depth = 4;
  double eta = 0.1;
  int pair_samples = 8;             // pairs sampled per positive per round
  double margin_scale = 0.5;        // base margin = margin_scale x blend score (0: trees only)
  double min_child_weight = 1.0;
  double subsample = 1.0;
  double colsample_bynode = 1.0;   // share of the inputs each split may choose from
  bool monotone = false;            // the score never falls as a candidate gets closer to the viewer's newest
                                    // interactions or to the blend's top (XGBoost monotone constraints)
  std::string objective = "rank:ndcg";
  int threads = 0;                  // training threads; 0 = number of cores
  int max_groups = 30000;           // viewers (query groups) sampled for training
  double validation_share = 0.1;    // eval: share of each user's training items held out to train on
  int training_slices = 1;          // eval: consecutive such shares, each labelled in its own world
  int random_slices = 0;            // eval: extra slices holding out a seeded random share of each line
  double random_slice_groups = 0.6; // eval: a random slice samples this share of max_groups
  double gate_tolerance = 0.002;    // promotion refused when validation NDCG drops by more than this
  int label_window_hours = 24;      // batch: an outcome within this long after an impression is a positive
  bool train_in_batch = true;       // batch: train a model from logged impressions and outcomes
  bool auto_promote = true;         // batch: ship the new model when it passes the gate (as `rollout` says)
  RolloutMode rollout = RolloutMode::kCanary;  // batch: how a model that passes the gate ships
  double canary_share = 10;         // percent of viewers the canary model serves
  int canary_min_viewers = 1500;    // canary viewers before the decision (80 % power for a 10 % CTR drop)
  double canary_max_increase = 0.2; // canary guardrails: hide and error rate may rise this much (relative)
  double canary_max_latency_increase = 0.5;  // and p99 latency this much
  int min_groups = 30;              // batch: fewer labelled requests than this: no training
  StreamInputs stream_inputs = StreamInputs::kAuto;  // the streaming groups' inputs in training
};

// The audit log (every response with its explanations, `GET /admin/audit/{id}`).
struct AuditOptions {
  int retention_hours = 2160;  // records older than this expire (90 days; 0: kept forever).
                               // `batch` trains on logged responses, so keep this longer than
                               // the span of impressions a model should learn from.
  // The audit chain (docs/security.md, "The audit chain"): every interval the
  // writer syncs the log and stores a checkpoint of the chain's head, signed
  // with the Ed25519 private key at signing_key (PEM, mode 0600, outside the
  // data dir; `affinity audit keygen`) when one is set.
  std::string signing_key;
  int checkpoint_interval_seconds = 60;
};

// The data dir's volume (docs/runbooks/disk-full.md): writes are refused with
// 507 while its free space is below the floor, before the store meets a full
// disk, and flow again on their own once space is back.
struct StorageOptions {
  int64_t min_free_mb = 1024;  // the free-space floor (MiB): room for memtable flushes, a checkpoint, a snapshot
  int max_wal_mb = 256;        // write-ahead log beyond this: the memtables pinning it are flushed
  int poll_ms = 1000;          // how often the free space is read (and stopped writes resumed)
};

// The event log, which `batch` and server start rebuild from.
struct EventLogOptions {
  int retention_hours = 0;  // events whose ts is older than this are dropped and refused at ingest
                            // (0: kept forever); batch then learns from this window only
};

// The live state's checkpoint (<data>/state/live.ckpt): a server starts from it
// plus the event log's tail instead of replaying the whole log.
struct StateOptions {
  int checkpoint_interval_seconds = 300;      // write one this often while events arrive (0: never; every
                                              // start then replays the whole log)
  int64_t checkpoint_after_events = 1000000;  // ... or sooner, once this many events are past the last one
};

// Experiments (POST /admin/experiments): attribution and the statistics of guardrails.
struct ExperimentsOptions {
  double attribution_hours = 24;        // a click or hide later than this after its response is not attributed
  double msprt_tau_relative = 0.1;      // the mSPRT mixture's scale, relative to the pooled rate of the metric
  double guardrail_alpha = 0.05;        // an arm is stopped when its always-valid p-value falls below this
  int guardrail_min_responses = 200;    // latency and Gini guardrails wait for this many responses per arm
  int guardrail_poll_ms = 1000;         // how often guardrails are evaluated
  bool force_arm_header = true;         // honour X-Affinity-Force-Arm (QA: one request in a chosen arm, not
                                        // counted); admin callers only once [auth] is configured
};

// Model drift (GET /admin/drift): serving rows against the training reference.
struct DriftOptions {
  double psi_threshold = 0.25;   // a signal drifts when its PSI exceeds this ...
  double p_value = 0.001;        // ... and its two-sample KS p-value (over responses) is below this / signals
  int min_rows = 500;            // no verdict before this many served rows
  int poll_ms = 10000;           // how often drift is evaluated (breaches are logged)
};

// One feature group's settings ([features.<group>]); checked against the
// declared groups by ApplyFeatureSettings (features/feature_registry.h).
struct FeatureGroupSettings {
  int64_t ttl_seconds = -1;  // -1: the declared TTL; 0: never stale
  int is_protected = -1;     // -1: as declared; 0 or 1
};

struct Config {
  ServerOptions server;
  ServingOptions serving;
  ActionWeights actions;
  BatchOptions batch;
  RankerOptions ranker;
  AuditOptions audit;
  EventLogOptions events;
  StorageOptions storage;
  StateOptions state;
  ExperimentsOptions experiments;
  DriftOptions drift;
  std::map<std::string, FeatureGroupSettings> features;  // by group name

  absl::Status Validate() const;
  static absl::StatusOr<Config> FromTomlFile(const std::string& path);
  static absl::StatusOr<Config> FromTomlString(const std::string& text);
  // This configuration with settings ("serving.diversity" -> 0.2) changed,
  // checked exactly as the file's would be (unknown keys, types, ranges).
  absl::StatusOr<Config> WithOverrides(const std::vector<std::pair<std::string, ConfigValue>>& overrides) const;
};

}  // namespace affinity
