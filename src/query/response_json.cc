#include "query/response_json.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/strings.h"
#include "ranking/ranker_inputs.h"

namespace affinity {
namespace {

// One result's explanation: the learned ranker's inputs when it scored the
// result, else the blend's features (method linear-exact, base 0).
void WriteExplanation(const QueryResponse& resp, const QueryResult& r, ExplainMode explain, ResponseForm form,
                      JsonWriter& w) {
  const bool learned = r.learned && r.input_contrib.size() == size_t(kNumRankInputs);
  const bool audit = form == ResponseForm::kAudit;
  w.Key("explanation").BeginObject();
  w.Key("reason").String(r.reason);
  w.Key("method").String(learned ? resp.attribution_method : "linear-exact");
  if (explain == ExplainMode::kFull) w.Key("base").Double(learned ? r.base : 0.0).Key("raw_score").Double(r.score);
  const bool top_only = explain == ExplainMode::kTop || audit;
  const float* values = learned ? r.inputs.data() : r.value.data();
  const float* contrib = learned ? r.input_contrib.data() : r.contribution.data();
  const size_t n = learned ? size_t(kNumRankInputs) : size_t(kNumFeatures);
  auto name = [learned](size_t f) -> std::string_view {
    return learned ? std::string_view(RankerInputNames()[f]) : std::string_view(FeatureName(Feature(f)));
  };
  WriteTopFeatures(values, contrib, n, top_only, name, w);
  if (audit && (!learned || r.inputs.size() == size_t(kNumRankInputs))) {
    w.Key("attributions_f32").String(EncodeFloats(contrib, n));
    w.Key("inputs_f32").String(EncodeFloats(values, n));
  }
  w.EndObject();
}

}  // namespace

void WriteTopFeatures(const float* values, const float* contributions, size_t n, bool top_only,
                      const std::function<std::string_view(size_t)>& name, JsonWriter& w) {
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return std::fabs(contributions[a]) > std::fabs(contributions[b]); });
  w.Key("top_features").BeginArray();
  int shown = 0;
  for (size_t f : order) {
    if (top_only && (shown >= 3 || contributions[f] == 0)) break;
    w.BeginObject().Key("name").String(name(f)).Key("value").Double(values[f]);
    w.Key("contribution").Double(contributions[f]).EndObject();
    ++shown;
  }
  w.EndArray();
}

void WriteResponseJson(const QueryResponse& resp, ExplainMode explain, ResponseForm form, bool with_inputs,
                       JsonWriter& w) {
  w.BeginObject();
  w.Key("request_id").String(resp.request_id);
  w.Key("model_version").String(resp.model_version);
  // The first experiment the viewer is in; all of them when there are several (layers).
  if (resp.experiments.empty()) {
    w.Key("experiment").Null();
  } else {
    auto write = [&w](const ExperimentArmRef& e) {
      w.BeginObject().Key("id").String(e.experiment).Key("arm").String(e.arm);
      if (e.forced) w.Key("forced").Bool(true);
      w.EndObject();
    };
    w.Key("experiment");
    write(resp.experiments.front());
    if (resp.experiments.size() > 1) {
      w.Key("experiments").BeginArray();
      for (const auto& e : resp.experiments) write(e);
      w.EndArray();
    }
  }
  w.Key("cold_start").Bool(resp.cold_start);
  w.Key("degraded").Bool(resp.degraded);
  if (resp.ranker_fallback) w.Key("ranker_fallback").Bool(true);
  if (!resp.skipped.empty()) {
    w.Key("skipped_sources").BeginArray();
    for (const auto& s : resp.skipped) w.String(s);
    w.EndArray();
  }
  if (!resp.stale_features.empty()) {
    w.Key("stale_features").BeginArray();
    for (const auto& s : resp.stale_features) w.String(s);
    w.EndArray();
  }
  w.Key("results").BeginArray();
  for (const QueryResult& r : resp.results) {
    w.BeginObject();
    w.Key("entity_id").String(r.entity_id);
    w.Key("score").Double(r.score);
    w.Key("sources").BeginArray();
    for (int s = 0; s < kNumSources; ++s)
      if ((r.sources >> s) & 1) w.String(SourceName(Source(s)));
    w.EndArray();
    if (r.floor) w.Key("placed_by").String("new_creator_floor");
    if (with_inputs && r.inputs.size() == size_t(kNumRankInputs))
      w.Key("ranker_inputs_f32").String(EncodeRankerRow(r.inputs));  // compact and exact
    if (explain != ExplainMode::kNone) WriteExplanation(resp, r, explain, form, w);
    w.EndObject();
  }
  w.EndArray();
  if (resp.paged && form == ResponseForm::kWire) {
    w.Key("next_cursor");
    if (resp.next_cursor.empty()) w.Null(); else w.String(resp.next_cursor);
  }
  w.EndObject();
}

}  // namespace affinity
