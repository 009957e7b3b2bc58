#include "audit/audit_record.h"

#include <simdjson.h>

#include <cmath>

#include "base/json_writer.h"
#include "base/strings.h"
#include "query/response_json.h"
#include "ranking/ranker_inputs.h"

namespace affinity {
namespace {

// Copies a JSON value, turning each compact explanation back into its named
// list (see ExpandAuditRecord).
void CopyExpanding(simdjson::dom::element e, JsonWriter& w) {
  if (e.type() == simdjson::dom::element_type::ARRAY) {
    w.BeginArray();
    for (auto v : simdjson::dom::array(e)) CopyExpanding(v, w);
    w.EndArray();
    return;
  }
  if (e.type() != simdjson::dom::element_type::OBJECT) {
    w.Raw(simdjson::minify(e));
    return;
  }
  simdjson::dom::object o(e);
  // A compact explanation: its attributions and input values as float32 rows,
  // named by the learned ranker's inputs or (method linear-exact) the blend's features.
  std::string_view a, x, method;
  std::vector<float> contrib, inputs;
  const bool blend = !o["method"].get(method) && method == "linear-exact";
  const size_t width = blend ? size_t(kNumFeatures) : size_t(kNumRankInputs);
  const bool compact = !o["attributions_f32"].get(a) && !o["inputs_f32"].get(x) && DecodeFloats(a, &contrib) &&
                       DecodeFloats(x, &inputs) && contrib.size() == width && inputs.size() == width;
  w.BeginObject();
  for (auto field : o) {
    if (compact && (field.key == "top_features" || field.key == "attributions_f32" || field.key == "inputs_f32"))
      continue;
    w.Key(field.key);
    CopyExpanding(field.value, w);
  }
  if (compact) {
    auto name = [&](size_t f) -> std::string_view {
      return blend ? FeatureName(Feature(f)) : std::string_view(RankerInputNames()[f]);
    };
    WriteTopFeatures(inputs.data(), contrib.data(), width, /*top_only=*/false, name, w);
  }
  w.EndObject();
}

}  // namespace

std::string BuildAuditRecord(const QueryRequest& req, const QueryResponse& resp, int64_t served_ms,
                             bool with_inputs) {
  JsonWriter w;
  w.BeginObject();
  w.Key("request_id").String(resp.request_id);
  w.Key("ts").Int(served_ms);
  w.Key("schema").Int(kAuditSchema);
  w.Key("viewer_id").String(req.viewer_id);
  w.Key("target").String(std::string(KindName(req.target)) + "s");
  w.Key("k").Int(req.k);
  w.Key("context").Raw(req.context.empty() ? "null" : req.context);
  w.Key("response");
  WriteResponseJson(resp, ExplainMode::kFull, ResponseForm::kAudit, with_inputs, w);
  w.EndObject();
  return w.Release();
}

absl::StatusOr<std::string> ExpandAuditRecord(std::string_view stored) {
  if (stored.find("\"attributions_f32\"") == std::string_view::npos) return std::string(stored);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(stored.data(), stored.size()).get(doc)) return absl::DataLossError("the audit record is not valid JSON");
  JsonWriter w;
  CopyExpanding(doc, w);
  return w.Release();
}

absl::StatusOr<LoggedResponse> ReadLoggedResponse(std::string_view stored) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(stored.data(), stored.size()).get(doc)) return absl::DataLossError("audit record is not JSON");
  LoggedResponse out;
  simdjson::dom::array results;
  if (doc["ts"].get(out.served_ms) || doc["response"]["results"].get(results))
    return absl::DataLossError("audit record without ts or response.results");
  std::vector<float> row;
  for (auto r : results) {
    std::string_view id, b64;
    if (r["entity_id"].get(id) || r["ranker_inputs_f32"].get(b64) || !DecodeRankerRow(b64, &row)) continue;
    out.results.push_back({std::string(id), row});
  }
  return out;
}

}  // namespace affinity
