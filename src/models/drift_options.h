// [drift]: model drift (its owner: models/drift_service.h).
#pragma once

#include <cstdint>
#include <string>
#include "absl/status/status.h"
#include "base/settings.h"

namespace affinity {

// Model drift (GET /admin/drift): serving rows against the training reference.
struct DriftOptions {
  double psi_threshold = 0.25;   // a signal drifts when its PSI exceeds this ...
  double p_value = 0.001;        // ... and its two-sample KS p-value (over responses) is below this / signals
  int min_rows = 500;            // no verdict before this many served rows
  int poll_ms = 10000;           // how often drift is evaluated (breaches are logged)

  static constexpr const char* kSection = "drift";
  // Its settings, for the configuration reader (base/settings.h).
  template <class Read>
  void Fields(Read& read) {
    read("drift", "psi_threshold", psi_threshold);
    read("drift", "p_value", p_value);
    read("drift", "min_rows", min_rows);
    read("drift", "poll_ms", poll_ms);
  }
  absl::Status Validate() const {
    auto bad = SettingError;
    if (!(psi_threshold > 0)) return bad("drift.psi_threshold must be > 0");
    if (!(p_value > 0 && p_value < 1)) return bad("drift.p_value must be in (0, 1)");
    if (min_rows < 1) return bad("drift.min_rows must be >= 1");
    if (poll_ms < 100) return bad("drift.poll_ms must be >= 100");
    return absl::OkStatus();
  }
};

}  // namespace affinity
