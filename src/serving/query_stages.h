// The stages of a query (QueryEngine::QueryWith runs them in this order):
//   ResolveViewer     who asks, their live state, seeds, exclusions, anchors
//   GatherCandidates  the sources under the deadline, then the popular fallback
//   FilterAndOrder    blend-scored candidates without self, hidden, excluded,
//                     followed (people), deleted, expired, filtered out by
//                     label, engaged (on request), best first
//   Rerank            the learned ranker over the blend's best `rerank_depth`
//   Constrain         per-creator cap, MMR diversity, new-creator floor
// Explanations are serving/explanation.h; the audit record audit/audit_record.h.
// Thread safety: pure functions of their arguments (they read the live state
// and the snapshot, which never block on writers).
#pragma once

#include <memory>
#include <unordered_set>
#include <vector>

#include "absl/status/statusor.h"
#include "base/clock.h"
#include "base/config.h"
#include "candidates/sources.h"
#include "query/query.h"
#include "ranking/blend.h"
#include "ranking/constraints.h"
#include "ranking/learned_ranker.h"
#include "state/live_state.h"
#include "state/registry.h"

namespace affinity {

// Adds the time since the previous lap to a stage (QueryResponse::stage_micros).
class StageTimer {
 public:
  explicit StageTimer(const Clock* clock) : clock_(clock), last_(clock->MonotonicMicros()) {}
  void Lap(Stage s, QueryResponse* resp) {
    const int64_t now = clock_->MonotonicMicros();
    resp->stage_micros[s] += now - last_;
    last_ = now;
  }

 private:
  const Clock* clock_;
  int64_t last_;
};

// The viewer of one query and what the sources read about them.
struct ViewerScope {
  Ref viewer;                                // invalid for an unknown viewer
  std::shared_ptr<const ViewerState> state;  // never null (empty for unknown viewers)
  std::vector<Ref> seeds;                    // the request's known seeds
  std::unordered_set<uint32_t> excluded;     // Ref bits the request excludes
  bool cold_start = false;                   // no history and no seeds
  SourceContext ctx;                         // points into `state`
};

// InvalidArgument when viewer_id names an entity that is not a user.
absl::StatusOr<std::unique_ptr<ViewerScope>> ResolveViewer(const QueryRequest& req, const ServingOptions& options,
                                                           const EntityRegistry& registry, const LiveState& live,
                                                           const Snapshot* snapshot, int64_t now_ms);

// The candidate set of the request's target kind: graph, co-engagement, ANN and
// walks while the deadline allows (skipped ones are named in `resp`), then
// popularity (always, so a response stays full) and, when still short, the
// newest entities; trimmed to `max_candidates` by normalised source scores.
CandidateSet GatherCandidates(const SourceContext& ctx, const QueryRequest& req, const ServingOptions& options,
                              const EntityRegistry& registry, const Deadline& deadline, StageTimer* timer,
                              QueryResponse* resp);

// Whether `r` passes the request's label filter (labels_any, labels_none).
bool PassesLabelFilter(Ref r, const QueryRequest& req, const EntityRegistry& registry);

// The blend-scored candidates a response may hold (never the viewer, hidden,
// excluded, followed accounts, deleted or expired entities, nor ones the label
// filter refuses; engaged ones on request), best first (ties by id).
std::vector<Scored> FilterAndOrder(std::vector<Scored> scored, const CandidateSet& set, const ViewerScope& viewer,
                                   const QueryRequest& req, const EntityRegistry& registry);

// The learned re-rank's outcome, and where each kept candidate's inputs are.
struct Reranked {
  size_t depth = 0;                // rows re-scored (or assembled)
  std::vector<float> inputs;       // depth x kNumRankInputs, blend order
  std::vector<uint32_t> input_row; // kept position -> row of `inputs` (UINT32_MAX: none)
  bool used_learned = false;
};

// Re-scores the blend's best `depth` rows with `learned` (null: none) in one
// batch and reorders them (the rest keep the blend's order below). Assembles
// the inputs when `learned` is set or `want_inputs`. On an error or an expired
// deadline the blend's order stands and `resp` says so.
Reranked Rerank(const SourceContext& ctx, const CandidateSet& set, const LearnedRanker* learned, bool want_inputs,
                size_t depth, const Deadline& deadline, std::vector<Scored>* kept, QueryResponse* resp);

// The k picks under the response's constraints (request overrides, else the
// configured defaults).
std::vector<Pick> Constrain(const std::vector<Scored>& kept, const CandidateSet& set, const Reranked& reranked,
                            const QueryRequest& req, const ServingOptions& options, const EntityRegistry& registry,
                            const Snapshot* snapshot);

}  // namespace affinity
