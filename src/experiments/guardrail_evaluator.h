// The guardrail evaluator: on its own poller thread, every poll_ms, it judges
// each running experiment's treatment arms against their guardrails
// (GuardrailBreach, experiment_report.h) and stops a breached arm through the
// catalogue (its viewers are then served as the control), logging it and
// recording it in the audit log. Every five seconds it also has the ledger
// checkpoint its exposure totals (a crash loses at most that much of them).
// Thread safety: Evaluate() runs on the poller's thread (or a test's);
// guardrail_stops() may be read from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "audit/audit_log.h"
#include "base/clock.h"
#include "base/config.h"
#include "experiments/experiments_options.h"
#include "base/poller.h"
#include "experiments/arm_ledger.h"
#include "experiments/experiment_catalogue.h"

namespace affinity {

class GuardrailEvaluator {
 public:
  GuardrailEvaluator(ExperimentCatalogue* catalogue, ArmLedger* ledger, AuditLog* audit, const Clock* clock,
                     const ExperimentsOptions& options);
  ~GuardrailEvaluator();

  // One pass: stops breached arms; true when it stopped one.
  absl::StatusOr<bool> Evaluate();
  void Start(int poll_ms);
  void Stop();
  uint64_t guardrail_stops() const { return guardrail_stops_.load(); }

 private:
  // Stops arm `arm` of experiment `id` for `reason`.
  absl::Status StopArm(const std::string& id, int arm, const std::string& reason);

  ExperimentCatalogue* catalogue_;
  ArmLedger* ledger_;
  AuditLog* audit_;
  const Clock* clock_;
  ExperimentsOptions options_;
  std::atomic<uint64_t> guardrail_stops_{0};
  int64_t last_checkpoint_ms_ = 0;  // the evaluating thread only
  std::unique_ptr<Poller> poller_;
};

}  // namespace affinity
