// A query under the server's experiments: the X-Affinity-Force-Arm policy,
// the viewer's arms, the query engine's run in them, and the bookkeeping of
// the outcome (a response with its latency, or an error) in each arm counted.
// Forced arms serve the request and are logged, never counted. Without
// experiments it is the query engine.
// Thread safety: Query() is safe for concurrent use (as the engine and the
// experiment service are).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "experiments/experiment_service.h"
#include "query/query.h"
#include "serving/query_engine.h"

namespace affinity {

// Why a forced-arm header was refused; the query did not run.
struct ForcedArmRefusal {
  enum Reason {
    kTurnedOff,  // experiments.force_arm_header is off here (HTTP 403 forbidden)
    kInvalid,    // the header does not name running experiments' arms (HTTP 422 invalid_header)
  } reason;
  std::string message;
};
// The refusal an error of ExperimentalQueryEngine::Query carries, or nothing
// for any other status (the engine's own errors).
std::optional<ForcedArmRefusal> ForcedArmRefusalOf(const absl::Status& s);

class ExperimentalQueryEngine {
 public:
  // Runs one query in a variant (QueryEngine::Query).
  using RunQuery = std::function<absl::StatusOr<QueryResponse>(const QueryRequest&, const QueryVariant&)>;

  // `experiments` null: no experiments (every response names none, the header is ignored).
  ExperimentalQueryEngine(const QueryEngine* engine, ExperimentService* experiments);
  ExperimentalQueryEngine(RunQuery run, ExperimentService* experiments);

  // `force_arm_header`: the raw X-Affinity-Force-Arm value ("" when absent).
  // The engine's answer, or an error ForcedArmRefusalOf recognises.
  absl::StatusOr<QueryResponse> Query(const QueryRequest& q, std::string_view force_arm_header) const;

 private:
  RunQuery run_;
  ExperimentService* experiments_;
};

}  // namespace affinity
