#include "audit/audit_record.h"

#include <simdjson.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

#include "base/json_writer.h"
#include "base/status.h"
#include "audit/record_codec.h"
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

std::string BuildAuditRecordJson(const QueryRequest& req, const QueryResponse& resp, int64_t served_ms,
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

namespace {

using audit_internal::Decoder;
using audit_internal::Encoder;

// Schema 4 adds the blend's head rows after the experiments (and writes the
// experiment counts always). Schema 3 records the width of the learned
// ranker's input rows (inputs are appended over time); schema 2 rows are the
// 54 inputs of the builds that wrote it. All three are read.
// Schema 5 is schema 4 and the name of the key that asked.
constexpr uint8_t kBinarySchemaWithKey = 5;
constexpr uint8_t kBinarySchema = 4;
constexpr uint8_t kBinarySchemaV3 = 3;
constexpr uint8_t kBinarySchemaV2 = 2;
constexpr size_t kRankInputsOfSchemaV2 = 54;
bool IsBinary(std::string_view stored) {
  if (stored.empty()) return false;
  const uint8_t s = uint8_t(stored[0]);
  return s == kBinarySchemaWithKey || s == kBinarySchema || s == kBinarySchemaV3 || s == kBinarySchemaV2;
}
enum ResponseFlags : uint8_t { kColdStart = 1, kDegraded = 2, kRankerFallback = 4 };
enum ResultFlags : uint8_t { kFloor = 1, kLearnedExplanation = 2, kInputsLogged = 4 };

bool LearnedExplanation(const QueryResult& r) {
  return r.learned && r.input_contrib.size() == size_t(kNumRankInputs);
}

// A binary record decoded: the response as the audit form keeps it.
struct DecodedResult {
  std::string_view entity_id, reason;
  double score = 0;
  uint8_t sources = 0, flags = 0;
  float base = 0;
  std::vector<float> contrib, values, inputs;  // explanation (learned: ranker inputs), logged inputs
};
struct DecodedRecord {
  uint8_t schema = 0;
  int64_t served_ms = 0;
  std::string_view request_id, viewer_id, context, model_version, method;
  Kind target = Kind::kItem;
  int64_t k = 0;
  uint8_t flags = 0;
  std::vector<std::string_view> skipped;
  std::vector<std::string_view> stale;  // feature groups past their TTL
  std::vector<DecodedResult> results;
  std::vector<std::pair<std::string_view, std::string_view>> experiments;  // (experiment, arm)
  std::vector<bool> forced;  // per experiment: its arm was forced by an admin's override
  std::vector<int32_t> head_result;             // schema 4: the blend's head rows (QueryResponse::head_result)
  std::vector<std::vector<float>> head_inputs;  // of the rows no result carries, in row order
  std::string_view key_name;                    // schema 5: the API key's name
};

constexpr const char* kStalePrefix = "stale:";

// Experiments (after the results): their count and (experiment, arm) pairs,
// then the indexes of those whose arm an override forced. Schema 4 writes both
// counts always; schema 3 left out the forced count when none was, and both
// when the response named no experiment.
absl::Status DecodeExperiments(Decoder& d, size_t size, bool forced_always, DecodedRecord* r) {
  const uint64_t ne = d.Varint();
  if (!d.ok() || ne > size) return absl::DataLossError("audit record is truncated");
  for (uint64_t i = 0; d.ok() && i < ne; ++i) {
    std::string_view id = d.Str(), arm = d.Str();
    r->experiments.emplace_back(id, arm);
  }
  r->forced.assign(r->experiments.size(), false);
  if (!forced_always && (!d.ok() || d.done())) return absl::OkStatus();
  const uint64_t nf = d.Varint();
  for (uint64_t i = 0; d.ok() && i < nf; ++i) {
    const uint64_t at = d.Varint();
    if (at >= r->forced.size()) return absl::DataLossError("audit record: bad forced experiment index");
    r->forced[at] = true;
  }
  return absl::OkStatus();
}

// Schema 4's tail: experiments, then the blend's head (QueryResponse::head_result):
// its row count, then per row the served result that carries its inputs plus
// one (0: none, and the row's inputs follow).
absl::Status DecodeTail(Decoder& d, size_t size, size_t rank_width, DecodedRecord* r) {
  AFF_RETURN_IF_ERROR(DecodeExperiments(d, size, /*forced_always=*/true, r));
  const uint64_t rows = d.Varint();
  if (!d.ok() || rows > size) return absl::DataLossError("audit record is truncated");
  for (uint64_t i = 0; d.ok() && i < rows; ++i) {
    const uint64_t result = d.Varint();
    if (result > r->results.size() || (result > 0 && r->results[result - 1].inputs.empty()))
      return absl::DataLossError("audit record: a head row names a result without inputs");
    r->head_result.push_back(int32_t(result) - 1);
    if (result == 0) {
      r->head_inputs.push_back(d.SparseFloats(rank_width));
      r->head_inputs.back().resize(size_t(kNumRankInputs), std::nanf(""));
    }
  }
  return d.ok() ? absl::OkStatus() : absl::DataLossError("audit record is truncated");
}

absl::StatusOr<DecodedRecord> DecodeBinary(std::string_view stored) {
  Decoder d(stored);
  DecodedRecord r;
  const uint8_t schema = r.schema = d.U8();
  if (!IsBinary(stored)) return absl::DataLossError("audit record: unknown schema");
  const size_t rank_width = schema == kBinarySchemaV2 ? kRankInputsOfSchemaV2 : size_t(d.Varint());
  if (!d.ok() || rank_width == 0 || rank_width > size_t(kNumRankInputs))
    return absl::DataLossError("audit record: ranker rows of " + std::to_string(rank_width) +
                               " inputs, this build knows " + std::to_string(kNumRankInputs));
  r.served_ms = int64_t(d.Varint());
  r.request_id = d.Str();
  r.viewer_id = d.Str();
  const uint8_t target = d.U8();
  if (target >= kNumKinds) return absl::DataLossError("audit record: bad target");
  r.target = Kind(target);
  r.k = int64_t(d.Varint());
  r.context = d.Str();
  r.model_version = d.Str();
  r.flags = d.U8();
  r.method = d.Str();
  for (uint64_t i = 0, n = d.Varint(); d.ok() && i < n; ++i) {
    const std::string_view x = d.Str();
    // Schema 2 carried stale groups in the skipped list, marked "stale:".
    if (schema == kBinarySchemaV2 && x.rfind(kStalePrefix, 0) == 0)
      r.stale.push_back(x.substr(std::strlen(kStalePrefix)));
    else
      r.skipped.push_back(x);
  }
  if (schema != kBinarySchemaV2)
    for (uint64_t i = 0, n = d.Varint(); d.ok() && i < n; ++i) r.stale.push_back(d.Str());
  const uint64_t n = d.Varint();
  if (!d.ok() || n > stored.size()) return absl::DataLossError("audit record is truncated");
  r.results.resize(n);
  for (DecodedResult& x : r.results) {
    x.entity_id = d.Str();
    x.score = d.F64();
    x.sources = d.U8();
    x.flags = d.U8();
    x.reason = d.Str();
    const bool learned = x.flags & kLearnedExplanation;
    const size_t width = learned ? rank_width : size_t(kNumFeatures);
    if (learned) x.base = d.F32();
    x.contrib = d.SparseFloats(width);
    x.values = d.SparseFloats(width);
    if (x.flags & kInputsLogged) x.inputs = learned ? x.values : d.SparseFloats(rank_width);
    if (!d.ok()) break;
    // A row of fewer inputs than this build's: the newer inputs did not exist
    // when it was served, so the logged row says "missing" (NaN) for them, and
    // the explanation gives them nothing.
    if (learned) {
      x.contrib.resize(size_t(kNumRankInputs), 0.f);
      x.values.resize(size_t(kNumRankInputs), 0.f);
    }
    if (!x.inputs.empty()) x.inputs.resize(size_t(kNumRankInputs), std::nanf(""));
  }
  if (schema == kBinarySchema || schema == kBinarySchemaWithKey) {
    AFF_RETURN_IF_ERROR(DecodeTail(d, stored.size(), rank_width, &r));
    if (schema == kBinarySchemaWithKey) r.key_name = d.Str();
  } else if (d.ok() && !d.done()) {  // schema 3 and 2: optional experiments and forced arms
    AFF_RETURN_IF_ERROR(DecodeExperiments(d, stored.size(), /*forced_always=*/false, &r));
  }
  if (!d.done()) return absl::DataLossError("audit record is truncated or has trailing bytes");
  return r;
}

// The readable form of a binary record: the response rebuilt from it and
// written by the response writer with every feature (what ExpandAuditRecord
// makes of the same response's JSON record, schema 1).
std::string ExpandBinary(const DecodedRecord& r) {
  QueryResponse resp;
  resp.request_id = std::string(r.request_id);
  resp.model_version = std::string(r.model_version);
  resp.cold_start = r.flags & kColdStart;
  resp.degraded = r.flags & kDegraded;
  resp.ranker_fallback = r.flags & kRankerFallback;
  resp.attribution_method = std::string(r.method);
  for (auto x : r.skipped) resp.skipped.emplace_back(x);
  for (auto x : r.stale) resp.stale_features.emplace_back(x);
  for (size_t i = 0; i < r.experiments.size(); ++i)
    resp.experiments.push_back({std::string(r.experiments[i].first), std::string(r.experiments[i].second), r.forced[i]});
  bool inputs_logged = false;
  for (const DecodedResult& x : r.results) {
    QueryResult q;
    q.entity_id = std::string(x.entity_id);
    q.score = x.score;
    q.sources = x.sources;
    q.reason = std::string(x.reason);
    q.floor = x.flags & kFloor;
    q.learned = x.flags & kLearnedExplanation;
    if (q.learned) {
      q.base = x.base;
      q.input_contrib = x.contrib;
      q.inputs = x.values;
    } else {
      std::copy(x.contrib.begin(), x.contrib.end(), q.contribution.begin());
      std::copy(x.values.begin(), x.values.end(), q.value.begin());
      q.inputs = x.inputs;
    }
    inputs_logged |= (x.flags & kInputsLogged) != 0;
    resp.results.push_back(std::move(q));
  }
  JsonWriter w;
  w.BeginObject();
  w.Key("request_id").String(r.request_id).Key("ts").Int(r.served_ms).Key("schema").Int(r.schema);
  w.Key("viewer_id").String(r.viewer_id);
  w.Key("target").String(std::string(KindName(r.target)) + "s").Key("k").Int(r.k);
  w.Key("context").Raw(r.context.empty() ? "null" : r.context);
  if (r.schema == kBinarySchemaWithKey) w.Key("key_name").String(r.key_name);
  w.Key("response");
  WriteResponseJson(resp, ExplainMode::kFull, ResponseForm::kWire, inputs_logged, w);
  w.EndObject();
  return w.Release();
}

}  // namespace

std::string BuildAuditRecord(const QueryRequest& req, const QueryResponse& resp, int64_t served_ms,
                             bool with_inputs) {
  std::string out;
  out.reserve(256 + resp.results.size() * (with_inputs ? 320 : 112));
  Encoder e(&out);
  e.U8(req.key_name.empty() ? kBinarySchema : kBinarySchemaWithKey);
  e.Varint(uint64_t(kNumRankInputs));
  e.Varint(uint64_t(served_ms));
  e.Str(resp.request_id);
  e.Str(req.viewer_id);
  e.U8(uint8_t(req.target));
  e.Varint(uint64_t(req.k));
  e.Str(req.context);
  e.Str(resp.model_version);
  e.U8(uint8_t((resp.cold_start ? kColdStart : 0) | (resp.degraded ? kDegraded : 0) |
               (resp.ranker_fallback ? kRankerFallback : 0)));
  e.Str(resp.attribution_method);
  e.Varint(resp.skipped.size());
  for (const auto& s : resp.skipped) e.Str(s);
  e.Varint(resp.stale_features.size());
  for (const auto& s : resp.stale_features) e.Str(s);
  e.Varint(resp.results.size());
  for (const QueryResult& r : resp.results) {
    const bool learned = LearnedExplanation(r);
    const bool inputs = with_inputs && r.inputs.size() == size_t(kNumRankInputs);
    e.Str(r.entity_id);
    e.F64(r.score);
    e.U8(r.sources);
    e.U8(uint8_t((r.floor ? kFloor : 0) | (learned ? kLearnedExplanation : 0) | (inputs ? kInputsLogged : 0)));
    e.Str(r.reason);
    if (learned) {
      e.F32(r.base);
      e.SparseFloats(r.input_contrib.data(), r.input_contrib.size());
      e.SparseFloats(r.inputs.data(), r.inputs.size());
    } else {
      e.SparseFloats(r.contribution.data(), r.contribution.size());
      e.SparseFloats(r.value.data(), r.value.size());
      if (inputs) e.SparseFloats(r.inputs.data(), r.inputs.size());
    }
  }
  e.Varint(resp.experiments.size());
  std::vector<size_t> forced;
  for (size_t i = 0; i < resp.experiments.size(); ++i) {
    e.Str(resp.experiments[i].experiment);
    e.Str(resp.experiments[i].arm);
    if (resp.experiments[i].forced) forced.push_back(i);
  }
  e.Varint(forced.size());
  for (size_t i : forced) e.Varint(i);
  // The blend's head, when the inputs are logged: a served row by its result.
  const size_t head = with_inputs ? resp.head_result.size() : 0;
  e.Varint(head);
  size_t unserved = 0;
  for (size_t row = 0; row < head; ++row) {
    const int32_t at = resp.head_result[row];
    const bool carried = at >= 0 && size_t(at) < resp.results.size() &&
                         resp.results[size_t(at)].inputs.size() == size_t(kNumRankInputs);
    e.Varint(carried ? uint64_t(at) + 1 : 0);
    if (carried) continue;
    const size_t from = at < 0 ? (unserved++) * size_t(kNumRankInputs) : resp.head_inputs.size();
    if (from + size_t(kNumRankInputs) <= resp.head_inputs.size())
      e.SparseFloats(resp.head_inputs.data() + from, size_t(kNumRankInputs));
    else  // not kept: every input missing
      e.SparseFloats(std::vector<float>(size_t(kNumRankInputs), std::nanf("")).data(), size_t(kNumRankInputs));
  }
  if (!req.key_name.empty()) e.Str(req.key_name);
  return out;
}

std::string NewAdminActionId(int64_t now_ms) { return NewTimeOrderedId("admin_", now_ms); }

std::string BuildAdminActionRecord(const std::string& id, const AdminAction& a, int64_t now_ms) {
  JsonWriter w;  // request_id and ts first: the store reads an unstamped record's time by that order
  w.BeginObject().Key("request_id").String(id).Key("ts").Int(now_ms).Key("schema").Int(kAdminActionSchema);
  w.Key("event").String("admin_action").Key("action").String(a.action).Key("method").String(a.method);
  w.Key("target").String(a.target).Key("key_name").String(a.key_name).Key("status").Int(a.status);
  w.EndObject();
  return w.Release();
}

absl::StatusOr<std::string> ExpandAuditRecord(std::string_view stored) {
  if (IsBinary(stored)) {
    AFF_ASSIGN_OR_RETURN(DecodedRecord r, DecodeBinary(stored));
    return ExpandBinary(r);
  }
  if (stored.find("\"attributions_f32\"") == std::string_view::npos) return std::string(stored);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(stored.data(), stored.size()).get(doc)) return absl::DataLossError("the audit record is not valid JSON");
  JsonWriter w;
  CopyExpanding(doc, w);
  return w.Release();
}

absl::StatusOr<ServedRecord> ReadServedRecord(std::string_view stored) {
  ServedRecord out;
  if (IsBinary(stored)) {
    AFF_ASSIGN_OR_RETURN(DecodedRecord r, DecodeBinary(stored));
    out.served_ms = r.served_ms;
    out.viewer_id = std::string(r.viewer_id);
    for (const DecodedResult& x : r.results) out.entity_ids.emplace_back(x.entity_id);
    // An arm forced by an override is left out: its outcomes count nowhere.
    for (size_t i = 0; i < r.experiments.size(); ++i)
      if (!r.forced[i]) out.experiments.push_back({std::string(r.experiments[i].first), std::string(r.experiments[i].second)});
    return out;
  }
  return absl::DataLossError("audit record written before experiments were recorded");
}

absl::StatusOr<LoggedResponse> ReadLoggedResponse(std::string_view stored) {
  if (IsBinary(stored)) {
    AFF_ASSIGN_OR_RETURN(DecodedRecord r, DecodeBinary(stored));
    LoggedResponse out;
    out.served_ms = r.served_ms;
    for (size_t row = 0, extra = 0; row < r.head_result.size(); ++row)
      out.head.push_back(r.head_result[row] >= 0 ? r.results[size_t(r.head_result[row])].inputs
                                                 : r.head_inputs[extra++]);
    for (DecodedResult& x : r.results)
      if (x.flags & kInputsLogged) out.results.push_back({std::string(x.entity_id), std::move(x.inputs)});
    return out;
  }
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
