#include "experiments/experiment.h"

#include "base/enum_names.h"

#include <simdjson.h>

#include <cmath>
#include <initializer_list>
#include <set>

#include "base/json_writer.h"
#include "base/strings.h"

namespace affinity {
namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

absl::Status Invalid(const std::string& m) { return absl::InvalidArgumentError(m); }

// "unknown field 'x' in where; did you mean 'y'?" for the first field not in `known`.
absl::Status UnknownField(object obj, std::initializer_list<std::string_view> known, const std::string& where) {
  const auto unknown = FirstUnknownKey(obj, std::vector<std::string_view>(known));
  if (!unknown) return absl::OkStatus();
  std::string m = "unknown field '" + where + unknown->key + "'";
  if (!unknown->nearest.empty()) m += "; did you mean '" + where + unknown->nearest + "'?";
  return Invalid(m);
}

absl::Status ReadString(object o, const char* key, const std::string& where, std::string* out, bool required = false) {
  element v;
  if (o[key].get(v)) return required ? Invalid(where + key + " is required") : absl::OkStatus();
  std::string_view s;
  if (v.get(s)) return Invalid(where + key + " must be a string");
  *out = std::string(s);
  return absl::OkStatus();
}

absl::Status ReadNumber(object o, const char* key, const std::string& where, double* out, bool required = false) {
  element v;
  if (o[key].get(v)) return required ? Invalid(where + key + " is required") : absl::OkStatus();
  if (v.get(*out) || !std::isfinite(*out)) return Invalid(where + key + " must be a number");
  return absl::OkStatus();
}

// A JSON value as a configuration value: integer literals stay integers.
absl::StatusOr<ConfigValue> ReadValue(element v, const std::string& name) {
  switch (v.type()) {
    case simdjson::dom::element_type::BOOL: return ConfigValue(bool(v.get_bool().value()));
    case simdjson::dom::element_type::INT64: return ConfigValue(int64_t(v.get_int64().value()));
    case simdjson::dom::element_type::UINT64: return Invalid(name + " is out of range");
    case simdjson::dom::element_type::DOUBLE: return ConfigValue(double(v.get_double().value()));
    case simdjson::dom::element_type::STRING: return ConfigValue(std::string(v.get_string().value()));
    default: return Invalid(name + " must be a number, a string or true/false");
  }
}

absl::Status ParseArm(object a, const std::string& where, ExperimentArm* arm) {
  if (auto s = UnknownField(a, {"name", "weight", "model_version", "ranker", "overrides", "status", "stopped_reason",
                                "stopped_ms"},
                            where);
      !s.ok())
    return s;
  if (auto s = ReadString(a, "name", where, &arm->name, true); !s.ok()) return s;
  if (arm->name.empty() || arm->name.size() > 64) return Invalid(where + "name must be 1 to 64 characters");
  if (auto s = ReadNumber(a, "weight", where, &arm->weight, true); !s.ok()) return s;
  if (!(arm->weight > 0)) return Invalid(where + "weight must be positive");
  if (auto s = ReadString(a, "model_version", where, &arm->model_version); !s.ok()) return s;
  std::string ranker;
  if (auto s = ReadString(a, "ranker", where, &ranker); !s.ok()) return s;
  if (!ranker.empty()) {
    const std::optional<ArmRanker> r = ParseArmRanker(ranker);
    if (!r) return Invalid(where + "ranker must be learned or off");
    arm->ranker = *r;
  }
  element ov;
  if (!a["overrides"].get(ov)) {
    object o;
    if (ov.get(o)) return Invalid(where + "overrides must be an object of serving.* settings");
    for (auto field : o) {
      const std::string name(field.key);
      if (name.rfind("serving.", 0) != 0)
        return Invalid(where + "overrides." + name + ": only serving.* settings may be overridden");
      auto value = ReadValue(field.value, where + "overrides." + name);
      if (!value.ok()) return value.status();
      arm->overrides.emplace_back(name, *value);
    }
  }
  // Stored state (read back from the data dir).
  std::string status;
  if (auto s = ReadString(a, "status", where, &status); !s.ok()) return s;
  arm->stopped = status == "stopped";
  if (auto s = ReadString(a, "stopped_reason", where, &arm->stopped_reason); !s.ok()) return s;
  int64_t stopped_ms = 0;
  if (!a["stopped_ms"].get(stopped_ms)) arm->stopped_ms = stopped_ms;
  return absl::OkStatus();
}

absl::StatusOr<Experiment> Parse(std::string_view json, bool stored) {
  thread_local simdjson::dom::parser parser;
  element doc;
  if (parser.parse(json.data(), json.size()).get(doc)) return Invalid("the experiment is not valid JSON");
  object o;
  if (doc.get(o)) return Invalid("the experiment must be a JSON object");
  std::initializer_list<std::string_view> created = {"id", "layer", "traffic", "targets", "arms", "guardrails"};
  std::initializer_list<std::string_view> all = {"id",        "layer",          "traffic",    "targets",
                                                 "arms",      "guardrails",     "kind",       "status",
                                                 "stopped_reason", "created_ms", "stopped_ms", "salt",
                                                 "traffic_offset"};
  if (auto s = UnknownField(o, stored ? all : created, ""); !s.ok()) return s;
  Experiment e;
  if (auto s = ReadString(o, "id", "", &e.id, true); !s.ok()) return s;
  if (e.id.empty() || e.id.size() > 128) return Invalid("id must be 1 to 128 characters");
  for (char c : e.id)
    if (!(std::isalnum(uint8_t(c)) || c == '-' || c == '_' || c == '.'))
      return Invalid("id may hold letters, digits, '-', '_' and '.' only");
  if (auto s = ReadString(o, "layer", "", &e.layer); !s.ok()) return s;
  if (auto s = ReadNumber(o, "traffic", "", &e.traffic); !s.ok()) return s;
  if (!(e.traffic > 0 && e.traffic <= 100)) return Invalid("traffic must be a percentage in (0, 100]");
  element targets;
  if (!o["targets"].get(targets)) {
    array arr;
    if (targets.get(arr)) return Invalid("targets must be an array of users, creators or items");
    for (auto t : arr) {
      std::string_view name;
      std::optional<Kind> k;
      if (t.get(name) || !(k = ParseKind(name))) return Invalid("targets must be an array of users, creators or items");
      e.targets.push_back(*k);
    }
  }
  element arms;
  array arms_arr;
  if (o["arms"].get(arms) || arms.get(arms_arr)) return Invalid("arms is required: an array of at least two arms");
  std::set<std::string> names;
  size_t i = 0;
  for (auto a : arms_arr) {
    const std::string where = "arms[" + std::to_string(i++) + "].";
    object ao;
    if (a.get(ao)) return Invalid(where.substr(0, where.size() - 1) + " must be an object");
    ExperimentArm arm;
    if (auto s = ParseArm(ao, where, &arm); !s.ok()) return s;
    if (!names.insert(arm.name).second) return Invalid(where + "name '" + arm.name + "' is used by another arm");
    e.arms.push_back(std::move(arm));
  }
  if (e.arms.size() < 2) return Invalid("arms must hold at least two arms (the first is the control)");
  if (e.arms.size() > 16) return Invalid("arms may hold at most 16 arms");
  element guards;
  if (!o["guardrails"].get(guards)) {
    array garr;
    if (guards.get(garr)) return Invalid("guardrails must be an array");
    size_t g = 0;
    for (auto gv : garr) {
      const std::string where = "guardrails[" + std::to_string(g++) + "].";
      object go;
      if (gv.get(go)) return Invalid(where.substr(0, where.size() - 1) + " must be an object");
      if (auto s = UnknownField(go, {"metric", "max_relative_increase"}, where); !s.ok()) return s;
      Guardrail gr;
      std::string metric;
      if (auto s = ReadString(go, "metric", where, &metric, true); !s.ok()) return s;
      const std::optional<GuardrailMetric> m = ParseGuardrailMetric(metric);
      if (!m) return Invalid(where + "metric must be hide_rate, error_rate, latency_p99_ms or exposure_gini");
      gr.metric = *m;
      if (auto s = ReadNumber(go, "max_relative_increase", where, &gr.max_relative_increase, true); !s.ok()) return s;
      if (!(gr.max_relative_increase >= 0)) return Invalid(where + "max_relative_increase must be >= 0");
      e.guardrails.push_back(gr);
    }
  }
  if (stored) {
    std::string kind, status;
    (void)ReadString(o, "kind", "", &kind);
    (void)ReadString(o, "status", "", &status);
    if (!kind.empty()) {
      const std::optional<ExperimentKind> k = ParseExperimentKind(kind);
      if (!k) return Invalid("kind must be manual or canary");
      e.kind = *k;
    }
    if (!status.empty()) {
      const std::optional<ExperimentStatus> st = ParseExperimentStatus(status);
      if (!st) return Invalid("status must be running or stopped");
      e.status = *st;
    }
    (void)ReadString(o, "stopped_reason", "", &e.stopped_reason);
    (void)ReadString(o, "salt", "", &e.salt);
    int64_t v = 0;
    if (!o["created_ms"].get(v)) e.created_ms = v;
    if (!o["stopped_ms"].get(v)) e.stopped_ms = v;
    if (!o["traffic_offset"].get(v)) e.traffic_offset = int(v);
  }
  return e;
}

void WriteValue(const ConfigValue& v, JsonWriter& w) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, bool>) w.Bool(x);
        else if constexpr (std::is_same_v<T, int64_t>) w.Int(x);
        else if constexpr (std::is_same_v<T, double>) w.Double(x);
        else w.String(x);
      },
      v);
}

}  // namespace

// One table of spellings per state (base/enum_names.h).
constexpr EnumNames<ExperimentStatus, 2> kStatusNames{{{{ExperimentStatus::kRunning, "running"},
                                                        {ExperimentStatus::kStopped, "stopped"}}}};
constexpr EnumNames<ExperimentKind, 2> kKindNames{{{{ExperimentKind::kManual, "manual"},
                                                    {ExperimentKind::kCanary, "canary"}}}};
// kDefault has no spelling: an arm without "ranker" ranks as the server does.
constexpr EnumNames<ArmRanker, 2> kArmRankerNames{{{{ArmRanker::kLearned, "learned"}, {ArmRanker::kOff, "off"}}}};
constexpr EnumNames<GuardrailMetric, 4> kGuardrailMetricNames{{{{GuardrailMetric::kHideRate, "hide_rate"},
                                                                {GuardrailMetric::kErrorRate, "error_rate"},
                                                                {GuardrailMetric::kLatencyP99Ms, "latency_p99_ms"},
                                                                {GuardrailMetric::kExposureGini, "exposure_gini"}}}};

std::string_view ExperimentStatusName(ExperimentStatus s) { return kStatusNames.Name(s); }
std::optional<ExperimentStatus> ParseExperimentStatus(std::string_view s) { return kStatusNames.Parse(s); }
std::string_view ExperimentKindName(ExperimentKind k) { return kKindNames.Name(k); }
std::optional<ExperimentKind> ParseExperimentKind(std::string_view s) { return kKindNames.Parse(s); }
std::string_view ArmRankerName(ArmRanker r) { return kArmRankerNames.Name(r); }
std::optional<ArmRanker> ParseArmRanker(std::string_view s) { return kArmRankerNames.Parse(s); }
std::string_view GuardrailMetricName(GuardrailMetric m) { return kGuardrailMetricNames.Name(m); }
std::optional<GuardrailMetric> ParseGuardrailMetric(std::string_view s) { return kGuardrailMetricNames.Parse(s); }

bool Experiment::Targets(Kind k) const {
  if (targets.empty()) return true;
  for (Kind t : targets)
    if (t == k) return true;
  return false;
}

absl::StatusOr<Experiment> ParseExperiment(std::string_view json) { return Parse(json, false); }
absl::StatusOr<Experiment> ParseStoredExperiment(std::string_view json) { return Parse(json, true); }

void WriteExperimentJson(const Experiment& e, JsonWriter& w) {
  w.BeginObject();
  w.Key("id").String(e.id);
  w.Key("kind").String(ExperimentKindName(e.kind));
  w.Key("status").String(ExperimentStatusName(e.status));
  if (!e.stopped_reason.empty()) w.Key("stopped_reason").String(e.stopped_reason);
  if (!e.layer.empty()) w.Key("layer").String(e.layer);
  w.Key("traffic").Double(e.traffic);
  w.Key("traffic_offset").Int(e.traffic_offset);
  w.Key("targets").BeginArray();
  for (Kind k : e.targets) w.String(std::string(KindName(k)) + "s");
  w.EndArray();
  w.Key("arms").BeginArray();
  for (const auto& a : e.arms) {
    w.BeginObject().Key("name").String(a.name).Key("weight").Double(a.weight);
    if (!a.model_version.empty()) w.Key("model_version").String(a.model_version);
    if (a.ranker != ArmRanker::kDefault) w.Key("ranker").String(ArmRankerName(a.ranker));
    if (!a.overrides.empty()) {
      w.Key("overrides").BeginObject();
      for (const auto& [k, v] : a.overrides) {
        w.Key(k);
        WriteValue(v, w);
      }
      w.EndObject();
    }
    w.Key("status").String(a.stopped ? "stopped" : e.running() ? "running" : "stopped");
    if (!a.stopped_reason.empty()) w.Key("stopped_reason").String(a.stopped_reason);
    if (a.stopped_ms) w.Key("stopped_ms").Int(a.stopped_ms);
    w.EndObject();
  }
  w.EndArray();
  w.Key("guardrails").BeginArray();
  for (const auto& g : e.guardrails)
    w.BeginObject().Key("metric").String(GuardrailMetricName(g.metric)).Key("max_relative_increase").Double(g.max_relative_increase).EndObject();
  w.EndArray();
  w.Key("created_ms").Int(e.created_ms);
  if (e.stopped_ms) w.Key("stopped_ms").Int(e.stopped_ms);
  w.Key("salt").String(e.salt);
  w.EndObject();
}

std::string ExperimentJson(const Experiment& e) {
  JsonWriter w;
  WriteExperimentJson(e, w);
  return w.Release();
}

uint64_t AssignmentHash(std::string_view salt, std::string_view text) {
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 0x100000001b3ull;
    }
  };
  mix(salt);
  h ^= 0x1f;  // a separator no id byte sequence can imitate across the boundary's length
  h *= 0x100000001b3ull;
  mix(text);
  h += 0x9e3779b97f4a7c15ull;
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

std::optional<int> AssignArm(const Experiment& e, std::string_view viewer_id) {
  // Which slice of the layer the viewer is in: a layer's experiments share one
  // hash of the viewer and take disjoint slices of it, so they never share a viewer.
  const std::string_view layer_salt = e.layer.empty() ? std::string_view(e.salt) : std::string_view(e.layer);
  const int bucket = int(AssignmentHash(layer_salt, viewer_id) % 10000);
  if (bucket < e.traffic_offset || bucket >= e.traffic_offset + e.TrafficBasisPoints()) return std::nullopt;
  // The arm: an independent hash (the experiment's own salt) mapped to [0, 1).
  const double u = double(AssignmentHash(e.salt + "/arm", viewer_id) >> 11) * 0x1.0p-53;
  double total = 0;
  for (const auto& a : e.arms) total += a.weight;
  double acc = 0;
  for (size_t i = 0; i < e.arms.size(); ++i) {
    acc += e.arms[i].weight / total;
    if (u < acc) return int(i);
  }
  return int(e.arms.size() - 1);
}

}  // namespace affinity
