// The query pipeline behind POST /affinity/query and offline evaluation:
// resolve viewer -> live state -> candidate sources under one deadline -> merge
// with attribution -> filter (self, followed, hidden, excluded) -> score
// (blend) -> per-creator cap -> explanations -> audit.
// Thread safety: Query() is safe for concurrent use; it never blocks on writers.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "audit/audit_log.h"
#include "base/clock.h"
#include "base/config.h"
#include "base/json_writer.h"
#include "features/snapshot.h"
#include "ranking/blend.h"
#include "ranking/learned_ranker.h"
#include "state/live_state.h"
#include "state/registry.h"

namespace affinity {

enum class ExplainMode { kNone, kTop, kFull };

// An audit record as stored (QueryEngine::WriteJson's audit form) made readable:
// every compact explanation (`attributions_f32`, `inputs_f32`) becomes the full
// `top_features` list of {name, value, contribution}, by absolute contribution.
// Records without compact explanations come back unchanged.
absl::StatusOr<std::string> ExpandAuditRecord(std::string_view stored);

struct QueryRequest {
  std::string viewer_id;
  Kind target = Kind::kItem;
  int k = 20;
  std::vector<std::string> seeds;
  std::vector<std::string> exclude;
  std::string context;             // raw JSON object or ""
  ExplainMode explain = ExplainMode::kTop;
  int deadline_ms = 0;             // 0: the configured default
  int max_per_creator = -1;        // -1: the configured default; 0: no cap
  bool exclude_engaged = false;    // drop entities the viewer already engaged with
  double diversity = -1;           // MMR weight in [0, 1); -1: the configured default
  double new_creator_share = -1;   // share of slots for new creators; -1: the configured default
  std::string ranker;              // "off": the blend; "" or "learned": the learned model when one is loaded
  bool want_inputs = false;        // return each result's learned-ranker inputs (training data)
  bool audit = true;
};

struct QueryResult {
  Ref ref;
  std::string entity_id;
  double score = 0;
  uint8_t sources = 0;
  std::array<float, kNumFeatures> value{};
  std::array<float, kNumFeatures> contribution{};
  std::string reason;
  // Set when the learned ranker scored this result.
  bool learned = false;
  bool floor = false;                 // placed by the new-creator exposure floor
  float base = 0;                     // the model's bias (TreeSHAP)
  std::vector<float> inputs;          // LearnedRanker inputs (learned or want_inputs)
  std::vector<float> input_contrib;   // TreeSHAP contribution per input (learned + explain)
};

enum Stage { kStageState = 0, kStageGraph, kStageCoeng, kStageAnn, kStageWalk, kStagePopular, kStageRank, kNumStages };
const char* StageName(Stage s);

struct QueryResponse {
  std::string request_id;
  std::string model_version;
  std::string snapshot;
  std::vector<QueryResult> results;
  bool cold_start = false;
  bool degraded = false;                 // a source was skipped for the deadline
  bool ranker_fallback = false;          // the learned ranker failed or ran out of time: blend used
  std::string attribution_method;        // of the learned ranker's explanations ("treeshap", "saabas")
  std::vector<std::string> skipped;
  std::array<size_t, kNumSources> candidates_per_source{};
  std::array<int64_t, kNumStages> stage_micros{};
};

class QueryEngine {
 public:
  QueryEngine(const ServingOptions& options, const EntityRegistry* registry, const LiveState* live,
              const SnapshotManager* snapshots, AuditLog* audit, const Clock* clock);

  // InvalidArgument for a request that is well-formed but invalid (422).
  absl::StatusOr<QueryResponse> Query(const QueryRequest& request) const;
  // Same pipeline against an explicit snapshot (offline evaluation).
  absl::StatusOr<QueryResponse> QueryWith(const QueryRequest& request, const Snapshot* snapshot) const;

  // with_inputs: each result's learned-ranker inputs as "ranker_inputs_f32" (the
  // training rows of `affinity batch`). audit_form: a model-scored result's full
  // explanation is kept compact — its top three features, then every attribution
  // and input value as float32 base64 (`attributions_f32`, `inputs_f32`), which
  // ExpandAuditRecord turns back into the named list when the record is read.
  void WriteJson(const QueryResponse& response, ExplainMode explain, JsonWriter& w, bool with_inputs = false,
                 bool audit_form = false) const;
  // Installs (or, with null, removes) the learned ranker; safe while serving.
  void SetLearnedRanker(std::shared_ptr<const LearnedRanker> ranker) { learned_.store(std::move(ranker)); }

 private:
  std::string Reason(const QueryResponse& r, const QueryResult& res, const Candidate& c) const;
  std::string DisplayName(Ref r) const;

  ServingOptions options_;
  const EntityRegistry* registry_;
  const LiveState* live_;
  const SnapshotManager* snapshots_;
  AuditLog* audit_;
  const Clock* clock_;
  BlendRanker ranker_;
  std::atomic<std::shared_ptr<const LearnedRanker>> learned_;
};

}  // namespace affinity
