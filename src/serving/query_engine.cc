#include "serving/query_engine.h"

#include <atomic>
#include <cstdio>
#include <random>

#include "audit/audit_record.h"
#include "base/strings.h"
#include "ranking/drift.h"
#include "ranking/ranker_inputs.h"
#include "serving/query_stages.h"

namespace affinity {

namespace {

// "q_" and a time-ordered id (base/strings.h): audit records keyed by it
// arrive at the store in key order.
std::string NewRequestId(int64_t now_ms) { return NewTimeOrderedId("q_", now_ms); }

}  // namespace

struct QueryEngine::Work {
  const QueryRequest& req;
  const ServingOptions& options;
  std::unique_ptr<ViewerScope> viewer;
  CandidateSet set;
  std::vector<Scored> kept;
  Reranked reranked;
};

QueryEngine::QueryEngine(const ServingOptions& options, const EntityRegistry* registry, const LiveState* live,
                         const SnapshotManager* snapshots, AuditLog* audit, const Clock* clock)
    : options_(options),
      registry_(registry),
      live_(live),
      snapshots_(snapshots),
      audit_(audit),
      clock_(clock),
      ranker_(options),
      explainer_(registry) {}

absl::StatusOr<QueryResponse> QueryEngine::Query(const QueryRequest& request, const QueryVariant& variant) const {
  auto snap = snapshots_ ? snapshots_->Get() : nullptr;
  return QueryWith(request, snap.get(), variant);
}

bool QueryEngine::LogInputs(const QueryRequest& req, const std::string& request_id) const {
  const double share = options_.log_ranker_inputs_share;
  if (!req.audit || !audit_ || share <= 0) return false;
  return share >= 1 || double(std::hash<std::string>()(request_id) % 10000) < share * 10000;
}

absl::StatusOr<QueryResponse> QueryEngine::QueryWith(const QueryRequest& req, const Snapshot* snap,
                                                     const QueryVariant& variant) const {
  const ArmServing* arm = variant.serving.get();
  const ServingOptions& options = arm ? arm->options : options_;
  const BlendRanker& blend = arm ? arm->blend : ranker_;
  // No viewer is a list for no one in particular, from seeds (an entity's similar list).
  if (req.viewer_id.empty() && req.seeds.empty()) return absl::InvalidArgumentError("viewer_id is required");
  if (req.k < 1 || req.k > 500) return absl::InvalidArgumentError("k must be between 1 and 500");
  StageTimer timer(clock_);
  Deadline deadline(clock_, int64_t(req.deadline_ms > 0 ? req.deadline_ms : options.deadline_ms) * 1000);
  QueryResponse resp;
  resp.request_id = NewRequestId(clock_->NowMillis());
  resp.snapshot = snap ? snap->version : "";
  resp.model_version = blend.version() + "/" + (snap ? snap->version : std::string("none"));
  resp.experiments = variant.experiments;
  if (snap) resp.stale_features = snap->StaleGroups(clock_->NowMillis());

  auto viewer = ResolveViewer(req, options, *registry_, *live_, snap, clock_->NowMillis());
  if (!viewer.ok()) return viewer.status();
  resp.cold_start = (*viewer)->cold_start;
  timer.Lap(kStageState, &resp);

  const SourceContext& ctx = (*viewer)->ctx;
  Work work{req, options, *std::move(viewer), GatherCandidates(ctx, req, options, *registry_, deadline, &timer, &resp), {}, {}};
  work.kept = FilterAndOrder(blend.Score(ctx, work.set), work.set, *work.viewer, req, *registry_);
  std::shared_ptr<const LearnedRanker> learned;
  if (req.ranker != RankerMode::kOff && !(arm && arm->ranker_off)) learned = arm && arm->model ? arm->model : learned_.load();
  const bool log_inputs = LogInputs(req, resp.request_id);
  work.reranked = Rerank(ctx, work.set, learned.get(), req.want_inputs || log_inputs, size_t(options.rerank_depth),
                         deadline, &work.kept, &resp);
  const std::vector<Pick> picks = Constrain(work.kept, work.set, work.reranked, req, options, *registry_, snap);
  BuildResults(work, picks, &resp);
  if (log_inputs) KeepBlendHead(work, picks, &resp);
  if (work.reranked.used_learned && req.explain != ExplainMode::kNone)
    AttachLearnedAttributions(*learned, req.explain, options.attribution_method, &resp);
  timer.Lap(kStageRank, &resp);

  if (req.audit && audit_)
    audit_->Record(resp.request_id, BuildAuditRecord(req, resp, clock_->NowMillis(), log_inputs), req.viewer_id);
  return resp;
}

void QueryEngine::KeepBlendHead(const Work& work, const std::vector<Pick>& picks, QueryResponse* resp) const {
  const Reranked& rr = work.reranked;
  const size_t rows = std::min(rr.depth, DriftMonitor::kTopRows);
  if (rr.inputs.size() < rows * kNumRankInputs) return;
  resp->head_result.assign(rows, -1);
  for (size_t i = 0; i < picks.size(); ++i)
    if (const uint32_t row = rr.input_row[picks[i].index]; row < rows) resp->head_result[row] = int32_t(i);
  for (size_t row = 0; row < rows; ++row)
    if (resp->head_result[row] < 0)
      resp->head_inputs.insert(resp->head_inputs.end(), rr.inputs.begin() + long(row * kNumRankInputs),
                               rr.inputs.begin() + long((row + 1) * kNumRankInputs));
}

void QueryEngine::BuildResults(const Work& work, const std::vector<Pick>& picks, QueryResponse* resp) const {
  const auto& items = work.set.items();
  const Reranked& rr = work.reranked;
  const ReasonContext rc{resp->cold_start, work.viewer->state->events > 0, &work.viewer->seeds,
                        work.options.similar_min_support};
  for (const Pick& p : picks) {
    const Scored& s = work.kept[p.index];
    const Candidate& c = items[s.index];
    QueryResult r;
    r.ref = c.ref;
    r.entity_id = registry_->ExtId(c.ref);
    r.score = s.score;
    r.sources = c.sources;
    r.value = s.value;
    r.contribution = s.contribution;
    r.learned = rr.used_learned && p.index < rr.depth;
    r.floor = p.floor;
    if (const uint32_t row = rr.input_row[p.index]; row != UINT32_MAX)
      r.inputs.assign(rr.inputs.begin() + size_t(row) * kNumRankInputs,
                      rr.inputs.begin() + size_t(row + 1) * kNumRankInputs);
    if (work.req.explain != ExplainMode::kNone) {
      r.reason = explainer_.Reason(r, c, rc);
      if (r.floor) r.reason += "; from a creator still building an audience (a share of slots is kept for them)";
    }
    resp->results.push_back(std::move(r));
  }
}

}  // namespace affinity
