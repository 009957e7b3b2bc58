// [experiments]: attribution and guardrails (its owner: experiments/).
#pragma once

#include <cstdint>
#include <string>
#include "absl/status/status.h"
#include "base/settings.h"

namespace affinity {

// Experiments (POST /admin/experiments): attribution and the statistics of guardrails.
struct ExperimentsOptions {
  double attribution_hours = 24;        // a click or hide later than this after its response is not attributed
  double msprt_tau_relative = 0.1;      // the mSPRT mixture's scale, relative to the pooled rate of the metric
  double guardrail_alpha = 0.05;        // an arm is stopped when its always-valid p-value falls below this
  int guardrail_min_responses = 200;    // latency and Gini guardrails wait for this many responses per arm
  int guardrail_poll_ms = 1000;         // how often guardrails are evaluated
  bool force_arm_header = true;         // honour X-Affinity-Force-Arm (QA: one request in a chosen arm, not
                                        // counted); admin callers only once [auth] is configured

  static constexpr const char* kSection = "experiments";
  // Its settings, for the configuration reader (base/settings.h).
  template <class Read>
  void Fields(Read& read) {
    read("experiments", "attribution_hours", attribution_hours);
    read("experiments", "msprt_tau_relative", msprt_tau_relative);
    read("experiments", "guardrail_alpha", guardrail_alpha);
    read("experiments", "guardrail_min_responses", guardrail_min_responses);
    read("experiments", "guardrail_poll_ms", guardrail_poll_ms);
    read("experiments", "force_arm_header", force_arm_header);
  }
  absl::Status Validate() const {
    auto bad = SettingError;
    if (!(attribution_hours > 0)) return bad("experiments.attribution_hours must be > 0");
    if (!(msprt_tau_relative > 0)) return bad("experiments.msprt_tau_relative must be > 0");
    if (!(guardrail_alpha > 0 && guardrail_alpha < 1))
      return bad("experiments.guardrail_alpha must be in (0, 1)");
    if (guardrail_min_responses < 1) return bad("experiments.guardrail_min_responses must be >= 1");
    if (guardrail_poll_ms < 10) return bad("experiments.guardrail_poll_ms must be >= 10");
    return absl::OkStatus();
  }
};

}  // namespace affinity
