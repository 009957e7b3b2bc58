// JSON: parsing a feedback batch (simdjson) and writing a query response.
#include <benchmark/benchmark.h>
#include <simdjson.h>

#include "base/json_writer.h"
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

void BM_WriteQueryResponse(benchmark::State& state) {
  BenchWorld& w = GetBenchWorld();
  QueryRequest q;
  q.viewer_id = w.viewers[1];
  q.k = 20;
  q.audit = false;
  auto r = *w.engine->QueryWith(q, w.snapshot.get());
  for (auto _ : state) {
    JsonWriter out;
    WriteResponseJson(r, ExplainMode::kTop, ResponseForm::kWire, false, out);
    benchmark::DoNotOptimize(out.str());
  }
}
BENCHMARK(BM_WriteQueryResponse);

}  // namespace
}  // namespace affinity::bench
