// The audit record: the one owner of its format. Every served response is kept
// with its request and every explanation in full, keyed by request_id
// (docs/storage.md, "Audit record", schema 1):
//   {"request_id":"q_…","ts":<served, unix ms>,"schema":1,"viewer_id":"…",
//    "target":"items","k":20,"context":{…}|null,"response":<the response in its
//    audit form, query/response_json.h>}
// `request_id` and `ts` stay the first two fields: the store reads a record's
// time by that order (records written before the store stamped its own).
// Records written before `schema` existed are schema 1 as well.
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "query/query.h"

namespace affinity {

inline constexpr int kAuditSchema = 1;

// The record of `response` to `request`, served at `served_ms`. with_inputs:
// each result's ranker inputs are kept (the rows `affinity batch` trains on).
std::string BuildAuditRecord(const QueryRequest& request, const QueryResponse& response, int64_t served_ms,
                             bool with_inputs);

// A stored record made readable (GET /admin/audit/{id}): every compact
// explanation becomes the full `top_features` list of {name, value,
// contribution}, by absolute contribution. Records without compact
// explanations come back unchanged.
absl::StatusOr<std::string> ExpandAuditRecord(std::string_view stored);

// What training reads back from a record: when it was served and, per result,
// the ranker inputs as served (results logged without inputs, or by a build
// with other inputs, are left out).
struct LoggedResult {
  std::string entity_id;
  std::vector<float> inputs;  // kNumRankInputs values
};
struct LoggedResponse {
  int64_t served_ms = 0;
  std::vector<LoggedResult> results;  // in served order
};
// DataLoss for a record that is not one (not JSON, no ts or results).
absl::StatusOr<LoggedResponse> ReadLoggedResponse(std::string_view stored);

}  // namespace affinity
