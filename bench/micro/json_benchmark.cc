// JSON: parsing a feedback batch (simdjson) and writing a query response.
#include <benchmark/benchmark.h>
#include <simdjson.h>

#include <algorithm>

#include "base/json_writer.h"
#include "audit/audit_record.h"
#include "query/response_json.h"
#include "bench_world.h"

namespace affinity::bench {
namespace {

void BM_ParseFeedbackBatch(benchmark::State& state) {
  std::string body = "{\"events\":[";
  for (int i = 0; i < state.range(0); ++i)
    body += std::string(i ? "," : "") + "{\"viewer_id\":\"u" + std::to_string(i) + "\",\"entity_id\":\"i" +
            std::to_string(i * 7) + "\",\"action\":\"click\",\"weight\":1.0,\"ts\":1767225600000,\"context\":{\"request_id\":\"q_abc\"}}";
  body += "]}";
  simdjson::dom::parser parser;
  for (auto _ : state) {
    simdjson::dom::element doc;
    if (parser.parse(body).get(doc)) std::abort();
    size_t n = 0;
    for (auto e : doc["events"].get_array()) {
      std::string_view v;
      n += !e["viewer_id"].get(v);
    }
    benchmark::DoNotOptimize(n);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(body.size()));
  state.SetItemsProcessed(int64_t(state.iterations()) * state.range(0));
}
BENCHMARK(BM_ParseFeedbackBatch)->Arg(1000);

// A 20-result blend response of the bench world (with each result's ranker
// inputs when `inputs`, and then the blend's head as a logged response keeps
// it: the blend's best 20 rows before the constraints, a served one by its
// result), and the request behind it.
std::pair<QueryRequest, QueryResponse> BlendResponse(bool inputs) {
  BenchWorld& w = GetBenchWorld();
  QueryRequest q;
  q.viewer_id = w.viewers[1];
  q.k = 20;
  q.audit = false;
  q.want_inputs = inputs;
  QueryResponse r = *w.engine->QueryWith(q, w.snapshot.get());
  if (!inputs) return {q, r};
  QueryRequest unconstrained = q;
  unconstrained.max_per_creator = 0, unconstrained.diversity = 0, unconstrained.new_creator_share = 0;
  const QueryResponse head = *w.engine->QueryWith(unconstrained, w.snapshot.get());
  for (const QueryResult& row : head.results) {
    int32_t at = -1;
    for (size_t i = 0; i < r.results.size(); ++i)
      if (r.results[i].entity_id == row.entity_id) at = int32_t(i);
    r.head_result.push_back(at);
    if (at < 0) r.head_inputs.insert(r.head_inputs.end(), row.inputs.begin(), row.inputs.end());
  }
  return {q, r};
}

void BM_WriteQueryResponse(benchmark::State& state) {
  const auto [q, r] = BlendResponse(false);
  for (auto _ : state) {
    JsonWriter out;
    WriteResponseJson(r, ExplainMode::kTop, ResponseForm::kWire, false, out);
    benchmark::DoNotOptimize(out.str());
  }
}
BENCHMARK(BM_WriteQueryResponse);

// The audit record of a 20-result blend response: arg 0 JSON (schema 1),
// arg 1 binary (schema 4); arg 2 with the ranker inputs logged (and, binary,
// the blend's head). The "bytes"
// counter is the record's size before the store's block compression.
void BM_BuildAuditRecord(benchmark::State& state) {
  const auto [q, r] = BlendResponse(true);
  const bool binary = state.range(0) == 1, inputs = state.range(1) == 1;
  size_t bytes = 0;
  for (auto _ : state) {
    std::string rec = binary ? BuildAuditRecord(q, r, 1767225600000, inputs) : BuildAuditRecordJson(q, r, 1767225600000, inputs);
    bytes = rec.size();
    benchmark::DoNotOptimize(rec);
  }
  state.counters["bytes"] = double(bytes);
  if (binary && inputs) {  // what the blend's head adds: its rows the constraints did not serve
    QueryResponse no_head = r;
    no_head.head_result.clear();
    state.counters["head_bytes"] = double(bytes - BuildAuditRecord(q, no_head, 1767225600000, true).size());
    state.counters["head_unserved"] = double(std::count(r.head_result.begin(), r.head_result.end(), -1));
  }
}
BENCHMARK(BM_BuildAuditRecord)->ArgNames({"binary", "inputs"})->ArgsProduct({{0, 1}, {0, 1}});

}  // namespace
}  // namespace affinity::bench
