// The query pipeline behind POST /affinity/query and offline evaluation, as
// its stages (serving/query_stages.h): resolve the viewer -> gather candidates
// under one deadline -> filter and order by the blend -> learned re-rank ->
// constraints (cap, MMR, new-creator floor) -> explanations -> audit record.
// Thread safety: Query() is safe for concurrent use; it never blocks on writers
// (the live state and the snapshot are read through atomically swapped
// pointers).
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "audit/audit_log.h"
#include "base/clock.h"
#include "base/config.h"
#include "features/snapshot_manager.h"
#include "query/query.h"
#include "ranking/blend.h"
#include "ranking/constraints.h"
#include "ranking/learned_ranker.h"
#include "serving/explanation.h"
#include "state/live_state.h"
#include "state/registry.h"

namespace affinity {

// How an experiment arm serves: its serving.* settings (and blend), its model
// version (null: the default model) and whether it ranks by the blend alone.
struct ArmServing {
  explicit ArmServing(const ServingOptions& o) : options(o), blend(o) {}
  ServingOptions options;
  BlendRanker blend;
  std::shared_ptr<const LearnedRanker> model;
  bool ranker_off = false;
};

// What a query runs as: the default, or the arm(s) the viewer is assigned to.
struct QueryVariant {
  std::vector<ExperimentArmRef> experiments;    // named in the response and its audit record
  std::shared_ptr<const ArmServing> serving;    // null: the default settings and model
};

class QueryEngine {
 public:
  QueryEngine(const ServingOptions& options, const EntityRegistry* registry, const LiveState* live,
              const SnapshotManager* snapshots, AuditLog* audit, const Clock* clock);

  // InvalidArgument for a request that is well-formed but invalid (422).
  absl::StatusOr<QueryResponse> Query(const QueryRequest& request, const QueryVariant& variant = {}) const;
  // Same pipeline against an explicit snapshot (offline evaluation).
  absl::StatusOr<QueryResponse> QueryWith(const QueryRequest& request, const Snapshot* snapshot,
                                          const QueryVariant& variant = {}) const;
  const ServingOptions& options() const { return options_; }

  // Installs (or, with null, removes) the learned ranker; safe while serving.
  void SetLearnedRanker(std::shared_ptr<const LearnedRanker> ranker) { learned_.store(std::move(ranker)); }
  std::shared_ptr<const LearnedRanker> learned_ranker() const { return learned_.load(); }

 private:
  struct Work;  // one query's intermediate state (query_engine.cc)
  // Whether this response's audit record keeps the ranker inputs (sampled by
  // request id at serving.log_ranker_inputs_share).
  bool LogInputs(const QueryRequest& req, const std::string& request_id) const;
  // The results of the picks, each with its reason.
  void BuildResults(const Work& work, const std::vector<Pick>& picks, QueryResponse* resp) const;
  // The blend's best rows of the head into `resp` (QueryResponse::head_result).
  void KeepBlendHead(const Work& work, const std::vector<Pick>& picks, QueryResponse* resp) const;

  ServingOptions options_;
  const EntityRegistry* registry_;
  const LiveState* live_;
  const SnapshotManager* snapshots_;
  AuditLog* audit_;
  const Clock* clock_;
  BlendRanker ranker_;
  Explainer explainer_;
  std::atomic<std::shared_ptr<const LearnedRanker>> learned_;
};

}  // namespace affinity
