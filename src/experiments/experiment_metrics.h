// One experiment's per-arm metrics, kept incrementally as responses and
// feedback arrive (never by scanning the event log): per viewer its arm,
// requests, responses, errors, exposures, clicks, hides and pre-experiment
// activity (the CUPED covariate); per arm a latency histogram, degraded and
// fallback counts and exposures per creator and per cohort. Every change is
// also returned as counter deltas for the store (additive, so the durable copy
// never needs a read), except exposures per creator and cohort, which are
// taken as totals now and then (TakeExposureTotals); LoadCounter rebuilds the
// same state from both.
// The report (BuildReport) reads the per-viewer counts once.
// Thread safety: not synchronised; the owner serialises access.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "experiments/experiment.h"
#include "experiments/stats.h"
#include "experiments/experiment_state_store.h"

namespace affinity {

inline constexpr int kLatencyBuckets = 64;  // log-spaced: bucket b holds latencies up to 0.05 ms × 1.25^b
int LatencyBucket(double ms);
double LatencyBucketUpperMs(int bucket);

struct ViewerCounts {
  int arm = -1;
  int64_t requests = 0, responses = 0, errors = 0, exposures = 0, clicks = 0, hides = 0;
  int64_t covariate = 0;  // the viewer's events before the first request in the experiment
};

// What one served response contributes.
struct ServedFacts {
  double latency_ms = 0;
  bool degraded = false, fallback = false;
  std::vector<uint32_t> results;      // Ref bits of each result
};

// Per-arm figures a guardrail or the report compares.
struct ArmFigures {
  RatioSums ctr, hide, error;  // per viewer: clicks/exposures, hides/exposures, errors/requests
  int64_t viewers = 0, requests = 0, responses = 0, errors = 0, exposures = 0, clicks = 0, hides = 0;
  double ctr_per_viewer = 0, hide_rate_per_viewer = 0;  // means over viewers with exposures of their own rates
  double latency_p50 = 0, latency_p99 = 0;
  double degraded_share = 0, fallback_share = 0;      // of responses
  double exposure_gini = 0;                           // over the creators the arm exposed
};

class ExperimentMetrics {
 public:
  ExperimentMetrics(std::string id, size_t arms);

  // Each appends the store deltas of its change to *out. `covariate` is used
  // the first time a viewer is seen.
  void OnResponse(const std::string& viewer, int arm, int64_t covariate, const ServedFacts& f,
                  std::vector<CounterDelta>* out);
  void OnError(const std::string& viewer, int arm, int64_t covariate, std::vector<CounterDelta>* out);
  void OnOutcome(const std::string& viewer, int arm, bool click, bool hide, std::vector<CounterDelta>* out);

  // A response's results wait (TakeUnresolved) until the owner, off the query
  // path, finds each one's creator and cohort and adds them (AddResolved).
  struct Unresolved {
    std::vector<std::pair<int, std::vector<uint32_t>>> responses;  // (arm, result Refs)
  };
  Unresolved TakeUnresolved();
  // Exposures of an arm, summed per creator and per cohort.
  void AddResolvedCounts(int arm, const std::unordered_map<uint32_t, int64_t>& creators,
                         const std::unordered_map<std::string, int64_t>& cohorts);

  // Exposures per creator and per cohort are not written per response: their
  // totals are stored now and then, in two steps so that the owner's lock is
  // held only briefly: TakeDirty swaps out which arms and cohorts changed;
  // Totals (under the lock again) gives their current totals.
  struct Dirty {
    std::vector<std::vector<uint32_t>> creators;    // per arm: non-empty when its creator totals changed
    std::vector<std::vector<std::string>> cohorts;  // per arm
    void Deduplicate();
  };
  Dirty TakeDirty();
  std::vector<CounterDelta> Totals(const Dirty& d) const;

  // Rebuilds from one stored counter (key without the experiment's prefix).
  void LoadCounter(std::string_view key, const std::vector<int64_t>& values);
  // The key prefix of this experiment's counters.
  static std::string Prefix(const std::string& id) { return CounterPrefix(id); }

  std::vector<ArmFigures> Figures() const;
  const ViewerCounts* Viewer(const std::string& viewer) const;
  size_t arms() const { return arms_.size(); }

 private:
  struct ArmCounters {
    int64_t degraded = 0, fallback = 0;
    std::array<int64_t, kLatencyBuckets> latency{};
    std::unordered_map<uint32_t, int64_t> creator_exposures;
    std::unordered_map<std::string, int64_t> cohort_exposures;
    std::vector<uint32_t> dirty_creators;
    std::vector<std::string> dirty_cohorts;
  };
  // The viewer's counts (created at its first request, with its arm and
  // covariate, which *delta then carries) and a zeroed delta for its key.
  ViewerCounts& Touch(const std::string& viewer, int arm, int64_t covariate, std::vector<int64_t>* delta);
  std::string prefix_;
  std::unordered_map<std::string, ViewerCounts> viewers_;
  std::vector<ArmCounters> arms_;
  Unresolved unresolved_;

 public:
  // Exposure share per cohort, per arm (for the report).
  std::vector<std::unordered_map<std::string, double>> CohortShares() const;
};

}  // namespace affinity
