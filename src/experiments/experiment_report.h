// The report of an experiment (GET /admin/experiments/{id}/report) and the
// guardrail rule, both from the per-arm figures: per arm its counts, CTR and
// hide rate per exposure with delta-method intervals, the same per viewer,
// latency, degraded and fallback shares, creator-exposure Gini and cohort
// exposure shares; the SRM p-value; per treatment arm and metric the lift with
// its interval, the fixed-horizon p-value, the always-valid (mSPRT) p-value,
// Holm-adjusted p-values and the CUPED estimate beside the raw one.
// Thread safety: pure functions (the running minimums are the caller's).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "experiments/experiment.h"
#include "experiments/experiment_metrics.h"

namespace affinity {

struct ReportInputs {
  std::vector<ArmFigures> figures;                                 // per arm
  std::vector<std::unordered_map<std::string, double>> cohort_shares;  // per arm
  std::vector<std::string> model_error;                            // per arm ("" when its model loaded)
};

struct ReportOptions {
  double tau_relative = 0.1;  // the mSPRT mixture's scale relative to the pooled rate
  double alpha = 0.05;        // level of the intervals
};

// The report as JSON. *running_min holds each always-valid p-value's running
// minimum by name ("<arm>/<metric>"); the report lowers them.
std::string BuildReportJson(const Experiment& def, const ReportInputs& in, const ReportOptions& options,
                            std::map<std::string, double>* running_min);

struct GuardrailOptions {
  double tau_relative = 0.1;
  double alpha = 0.05;
  int64_t min_responses = 200;
};
// Why `arm` breaches one of the experiment's guardrails against the control
// (arm 0), or nothing when none: hide_rate and error_rate when the always-valid
// p-value of "arm > control × (1 + max increase)" falls below alpha;
// latency_p99_ms and exposure_gini when both arms have min_responses and the
// arm's value exceeds the control's by more than the allowed increase.
std::optional<std::string> GuardrailBreach(const Experiment& def, const std::vector<ArmFigures>& figures, size_t arm,
                            const GuardrailOptions& options, std::map<std::string, double>* running_min);

// The decision on a canary (arm 1, the new model) against the control (arm 0,
// the current default).
struct CanaryVerdict {
  enum Action { kWait, kPromote, kRollBack } action = kWait;
  std::string why;  // in words, with the figures behind it
};
struct CanaryOptions {
  int64_t min_viewers = 1500;  // canary viewers before the decision
  double alpha = 0.05;
  double tau_relative = 0.1;
};
// Rolls back at once when a guardrail stopped the canary arm or when its CTR
// per exposure is lower than the control's with always-valid confidence (an
// mSPRT on the difference, one-sided; its running minimum in *running_min
// under "canary/ctr_lower"). Once the canary has min_viewers: rolls back when
// its CTR is significantly lower at the fixed horizon (two-sided z test of the
// delta-method difference at alpha), promotes otherwise. Waits before that.
CanaryVerdict JudgeCanary(const Experiment& def, const std::vector<ArmFigures>& figures, const CanaryOptions& options,
                          std::map<std::string, double>* running_min);

// The running minimums as stored ({"name":p,...}) and read back.
std::string RunningMinimumsJson(const std::map<std::string, double>& m);
void ReadRunningMinimums(std::string_view json, std::map<std::string, double>* out);

}  // namespace affinity
