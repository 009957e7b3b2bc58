// A query's value types: the request POST /affinity/query carries (after
// parsing), each result and the response with its bookkeeping. Shared by the
// pipeline that fills them (serving/), the wire format (query/response_json.h),
// the audit record (audit/audit_record.h) and offline evaluation.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/enum_names.h"
#include "base/ids.h"
#include "candidates/candidate_set.h"
#include "ranking/blend.h"

namespace affinity {

enum class ExplainMode { kNone, kTop, kFull };

// Which ranker orders a query's results: the learned model when one is loaded
// (the default), or the blend alone ("off"; a request may also say "blend").
enum class RankerMode { kLearned, kOff };
inline constexpr EnumNames<RankerMode, 2> kRankerModeNames{
    {{{RankerMode::kLearned, "learned"}, {RankerMode::kOff, "off"}}}};
inline std::string_view RankerModeName(RankerMode m) { return kRankerModeNames.Name(m); }

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
  // Drop entities the viewer already engaged with; unset: true for items (what
  // a viewer consumed is not news), false for people and creators.
  std::optional<bool> exclude_engaged;
  double diversity = -1;           // MMR weight in [0, 1); -1: the configured default
  double new_creator_share = -1;   // share of slots for new creators; -1: the configured default
  RankerMode ranker = RankerMode::kLearned;
  std::vector<std::string> labels_any;   // filter: every result carries at least one of these (when given)
  std::vector<std::string> labels_none;  // filter: no result carries any of these
  std::string cursor;              // a previous page's next_cursor: the page after it (serving/query_cursor.h)
  bool want_inputs = false;        // return each result's learned-ranker inputs (training data)
  bool audit = true;
  // The name of the API key that asked (its audit record names it; never the
  // key itself). "" without access control.
  std::string key_name;
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
  std::vector<float> inputs;          // learned-ranker inputs (learned or want_inputs)
  std::vector<float> input_contrib;   // attribution per input (learned + explain)
};

// The pipeline's timed stages (QueryResponse::stage_micros, /metrics).
enum Stage { kStageState = 0, kStageGraph, kStageCoeng, kStageAnn, kStageWalk, kStagePopular, kStageRank, kNumStages };
const char* StageName(Stage s);

// An experiment the viewer is in and the arm it was served (named in the
// response and its audit record).
struct ExperimentArmRef {
  std::string experiment;
  std::string arm;
  bool forced = false;  // chosen by an admin's override (X-Affinity-Force-Arm): excluded from analysis
};

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
  // Feature groups past their TTL at this response's snapshot: their values
  // were masked (the sources and inputs that need them went without).
  std::vector<std::string> stale_features;
  std::vector<ExperimentArmRef> experiments;  // experiments the viewer is in, in creation order
  std::array<size_t, kNumSources> candidates_per_source{};
  std::array<int64_t, kNumStages> stage_micros{};
  // Pages (POST /affinity/query): the wire form carries "next_cursor" when
  // `paged`, the cursor of the next page or null ("" here) at the end.
  bool paged = false;
  std::string next_cursor;
  // The blend's best rows of the re-rank head, in the blend's order, kept with
  // the ranker inputs of a logged response: what a model's drift reference is
  // drawn from (the slice its monitor sees). Per row, the result that carries
  // its inputs (-1: none, it was not served; its inputs are in `head_inputs`,
  // in row order).
  std::vector<int32_t> head_result;
  std::vector<float> head_inputs;
};

}  // namespace affinity
