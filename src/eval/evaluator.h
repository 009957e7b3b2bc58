// Offline evaluation through the serving path: builds a world (store, live
// state, snapshot) from the training data in a scratch data dir, then ranks for
// every test user with QueryEngine::QueryWith — the same candidate sources,
// filters and scoring as POST /affinity/query — in parallel over users.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/config.h"
#include "batch/batch_options.h"
#include "ranking/ranker_options.h"
#include "eval/metrics.h"

namespace affinity {

struct EvalOptions {
  std::string format;    // lightgcn, native, snap-edges or hetrec-lastfm
  std::string train;     // lightgcn: train.txt; native: the dataset folder
  std::string test;      // lightgcn: test.txt; native: unused (time split)
  int k = 20;
  std::string ranker = "off";  // "off": the candidate blend; "learned": LambdaMART trained on a
                               // validation slice of the training data
  double holdout = 0.2;        // native: share of each viewer's positive events held out (latest by time)
  double validation = 0;       // lightgcn: when > 0, ignore --test and hold out this share of each
                               // user's training items (seeded) to tune on, never on test
  std::string validation_order = "latest";  // lightgcn --validation: the latest share of each line, or a random one
  int threads = 0;
  // The settings evaluation runs with: the query pipeline's, the actions', and
  // how batch builds the snapshot and the ranker trains (from the configuration).
  struct Settings {
    ServingOptions serving;
    ActionWeights actions;
    BatchOptions batch;
    RankerOptions ranker;
  } config;
  std::string scratch_dir;     // where the world is built; a temp dir when empty
  std::string ranker_model;    // --ranker learned: evaluate this saved model instead of training one
  std::string save_model;      // --ranker learned: save the trained model here
  std::string target;          // hetrec-lastfm: "creators" (held-out plays) or "users" (held-out friendships)
  std::string config_path;     // the configuration file the settings came from ("" = defaults), for the report
};

struct CohortRow {
  std::string name;
  int64_t users = 0;
  double recall = 0, ndcg = 0;
  double tail_share = 0;        // share of the cohort's slots given to tail entities
};

struct TierRow {
  std::string name;
  double catalogue_share = 0;   // share of entities in the tier
  double exposure_share = 0;    // share of recommendation slots given to it
  double recall = 0;            // hits / test items in the tier
};

// A published figure for a known split, shown beside the run.
struct PublishedResult {
  std::string method;
  double recall = 0, ndcg = 0;
};

struct EvalResult {
  int k = 20;
  int64_t users = 0;
  UserMetrics at_k;
  double coverage = 0;            // distinct recommended / catalogue size
  double popularity_bias = 0;     // mean popularity percentile of recommended entities
  double build_seconds = 0, rank_seconds = 0, seconds = 0;
  double train_seconds = 0;       // --ranker learned: validation world + training
  double ranker_validation_ndcg = 0;  // the model's NDCG@k on held-out validation groups
  double blend_validation_ndcg = 0;   // the blend's on the same groups
  std::string ranker_stream_inputs;   // "used" or "not used", and why (ranker.stream_inputs)
  std::map<int, UserMetrics> curve;            // metric vs k
  std::vector<CohortRow> activity_deciles;     // viewers by training activity
  std::vector<TierRow> popularity_tiers;       // head / mid / tail entities
  double exposure_gini = 0;                    // Gini of recommendation slots over the catalogue
  double creator_exposure_gini = 0;            // Gini of slots over creators (items and creators targets)
  std::vector<TierRow> creator_tiers;          // creator popularity tiers and new creators: catalogue vs exposure share
  std::vector<CohortRow> viewer_cohorts;       // by the users' cohort labels
  std::vector<std::pair<double, double>> popularity_curve;  // (catalogue decile, exposure share)
  std::string ranker;
  std::string dataset;
  std::string target;
  // Link prediction: the same metrics for graph baselines computed by this tool
  // on the training graph (common neighbours, Adamic-Adar).
  std::map<std::string, UserMetrics> baselines;       // popularity, and graph baselines for people
  std::vector<PublishedResult> published;            // for a split with published figures (LightGCN Gowalla)
  std::vector<std::pair<std::string, std::string>> run_info;  // version, date, options: the report's metadata
  // Each test user's ranked list (external ids), in test-file order.
  std::vector<std::pair<std::string, std::vector<std::string>>> topk;
};

using EvalProgress = std::function<void(const std::string& stage, int64_t done, int64_t total)>;

absl::StatusOr<EvalResult> RunEval(const EvalOptions& options, const EvalProgress& progress = {});

std::string EvalJson(const EvalResult& r);
// A self-contained HTML report with SVG plots (opens offline).
std::string EvalReportHtml(const EvalResult& r);

}  // namespace affinity
