// An experiment: arms that change the model version, the ranker or serving.*
// settings for a share of viewers, the guardrails that stop an arm, and its
// lifecycle (running, stopped). The first arm is the control.
// This file owns the definition's JSON (the body of POST /admin/experiments
// and the record kept in the data dir) and viewer assignment: a salted hash of
// (experiment, viewer), so the same viewer gets the same arm on every request,
// after a restart and on every replica.
// Thread safety: value types and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "base/config.h"
#include "base/ids.h"

namespace affinity {

class JsonWriter;

// The states and names an experiment's JSON spells as strings, as enums: each
// has its JSON spelling (…Name) and reads it back (Parse…: nullopt for a
// spelling it does not know).

// Lifecycle: running until stopped (by hand, by its canary's decision).
enum class ExperimentStatus { kRunning, kStopped };
std::string_view ExperimentStatusName(ExperimentStatus s);  // "running", "stopped"
std::optional<ExperimentStatus> ParseExperimentStatus(std::string_view s);

// What created it: POST /admin/experiments, or a model's canary rollout.
enum class ExperimentKind { kManual, kCanary };
std::string_view ExperimentKindName(ExperimentKind k);  // "manual", "canary"
std::optional<ExperimentKind> ParseExperimentKind(std::string_view s);

// An arm's ranker: as the server's default, the learned ranker, or the blend alone.
enum class ArmRanker { kDefault, kLearned, kOff };
std::string_view ArmRankerName(ArmRanker r);  // "" (not written), "learned", "off"
std::optional<ArmRanker> ParseArmRanker(std::string_view s);  // "learned" or "off"

// Guardrail metrics an experiment may declare.
enum class GuardrailMetric { kHideRate, kErrorRate, kLatencyP99Ms, kExposureGini };
std::string_view GuardrailMetricName(GuardrailMetric m);  // "hide_rate", "error_rate", "latency_p99_ms", "exposure_gini"
std::optional<GuardrailMetric> ParseGuardrailMetric(std::string_view s);

struct ExperimentArm {
  std::string name;
  double weight = 0;                 // relative; positive
  std::string model_version;         // "": the default model
  ArmRanker ranker = ArmRanker::kDefault;
  std::vector<std::pair<std::string, ConfigValue>> overrides;  // "serving.x" -> value
  bool stopped = false;              // by a guardrail: its viewers are served as the control
  std::string stopped_reason;
  int64_t stopped_ms = 0;
};

struct Guardrail {
  GuardrailMetric metric = GuardrailMetric::kHideRate;
  double max_relative_increase = 0;  // of the arm's value over the control's
};

struct Experiment {
  std::string id;
  std::string layer;                 // "": a layer of its own
  double traffic = 100;              // percent of viewers in the experiment
  int traffic_offset = 0;            // start of its slice of the layer, in basis points (0..10000)
  std::vector<Kind> targets;         // empty: every target
  std::vector<ExperimentArm> arms;
  std::vector<Guardrail> guardrails;
  ExperimentKind kind = ExperimentKind::kManual;
  ExperimentStatus status = ExperimentStatus::kRunning;
  std::string stopped_reason;
  int64_t created_ms = 0;
  int64_t stopped_ms = 0;
  std::string salt;                  // hashed with the viewer id; fixed at creation

  bool running() const { return status == ExperimentStatus::kRunning; }
  bool Targets(Kind k) const;
  // Basis points of a layer's viewers this experiment takes.
  int TrafficBasisPoints() const { return int(traffic * 100 + 0.5); }
};

// Parses a create request. InvalidArgument naming the field for a malformed or
// invalid definition (unknown fields, duplicate arm names, weights that are not
// positive, an unknown guardrail metric, a traffic share outside (0, 100]).
// Checks that need the deployment (model versions, override values, layer
// room) are the caller's.
absl::StatusOr<Experiment> ParseExperiment(std::string_view json);
// The stored form, which ParseStoredExperiment reads back (every field).
void WriteExperimentJson(const Experiment& e, JsonWriter& w);
std::string ExperimentJson(const Experiment& e);
absl::StatusOr<Experiment> ParseStoredExperiment(std::string_view json);

// The arm `viewer_id` is assigned to (index into arms), or nullopt when the
// viewer falls outside the experiment's traffic share. Pure: depends only on
// the experiment's salt, layer, traffic slice and weights.
std::optional<int> AssignArm(const Experiment& e, std::string_view viewer_id);

// A stable 64-bit hash of (salt, text) for assignment: FNV-1a over both, then a
// SplitMix64 finaliser; the same on every machine and build.
uint64_t AssignmentHash(std::string_view salt, std::string_view text);

}  // namespace affinity
