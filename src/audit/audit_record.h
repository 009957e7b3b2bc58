// The audit record: the one owner of its format. Every served response is kept
// with its request and every explanation in full, keyed by request_id
// (docs/storage.md, "Audit record").
//   Schema 5 (written for a request that presented an API key): schema 4,
//   then the key's name (never the key).
//   Schemas 4 (written without a key), 3 and 2: binary — the schema byte, then the
//   request, the response and each result with its reason and its
//   explanation's attributions and values as float32 (sparse: a bit per value,
//   then the nonzero ones), the score as float64, and the ranker inputs when
//   they are logged; then the experiments, and (4) the ranker inputs of the
//   blend's best rows when inputs are logged (a served one by its result).
//   Schema 1 (read, and written by BuildAuditRecordJson): JSON,
//   {"request_id":"q_…","ts":<served, unix ms>,"schema":1,"viewer_id":"…",
//    "target":"items","k":20,"context":{…}|null,"response":<the response in its
//    audit form, query/response_json.h>}; records written before `schema`
//   existed are schema 1 too. Its `request_id` and `ts` stay the first fields:
//   the store reads an unstamped record's time by that order.
// Both expand to the same readable JSON and the same training rows.
// Admin actions made with a key ([auth] on: every /admin route but GET, such as
// experiment create and stop, checkpoint) are records of their own, JSON:
//   {"request_id":"admin_…","ts":<unix ms>,"schema":5,"event":"admin_action",
//    "action":"<route name>","method":"POST","target":"<path>","key_name":"ops",
//    "status":200}
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "query/query.h"

namespace affinity {

inline constexpr int kAuditSchema = 1;  // of BuildAuditRecordJson

// The record of `response` to `request`, served at `served_ms` (schema 2).
// with_inputs: each result's ranker inputs are kept (the rows `affinity batch`
// trains on).
std::string BuildAuditRecord(const QueryRequest& request, const QueryResponse& response, int64_t served_ms,
                             bool with_inputs);
// The same record as JSON (schema 1): what records were before schema 2.
std::string BuildAuditRecordJson(const QueryRequest& request, const QueryResponse& response, int64_t served_ms,
                                 bool with_inputs);

// An admin action made with the API key named `key_name` (the key itself is
// never recorded): the route's name, method and path, and the answer's status.
struct AdminAction {
  std::string action;  // the route's name ("experiment_stop", "checkpoint")
  std::string method;
  std::string target;  // the request's path
  std::string key_name;
  int status = 0;
};
inline constexpr int kAdminActionSchema = 5;
// A fresh id for an admin action's record: "admin_", 12 hex digits of the
// millisecond, 4 of this process's random tag and 6 of a process-wide counter
// (the layout of a query's request id).
std::string NewAdminActionId(int64_t now_ms);
std::string BuildAdminActionRecord(const std::string& id, const AdminAction& action, int64_t now_ms);

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
  // The ranker inputs of the blend's best rows of the re-rank head, in the
  // blend's order (records of schema 4 that logged inputs; else empty): the
  // slice a drift monitor sees, served or not.
  std::vector<std::vector<float>> head;
};
// DataLoss for a record that is not one (not JSON, no ts or results).
absl::StatusOr<LoggedResponse> ReadLoggedResponse(std::string_view stored);

// What experiment attribution reads back from a record (schema 2 only): when
// and to whom it was served, its results and the experiments it named
// (without those whose arm an override forced: they are not analysed).
struct ServedRecord {
  int64_t served_ms = 0;
  std::string viewer_id;
  std::vector<std::string> entity_ids;
  std::vector<ExperimentArmRef> experiments;
};
absl::StatusOr<ServedRecord> ReadServedRecord(std::string_view stored);

}  // namespace affinity
