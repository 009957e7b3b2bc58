#include "experiments/experimental_query_engine.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "absl/strings/cord.h"

namespace affinity {
namespace {

// Marks a refusal of the forced-arm header: the payload is its reason.
constexpr char kForcedArmPayload[] = "affinity.forced_arm";

absl::Status Refusal(ForcedArmRefusal::Reason reason, const std::string& message) {
  absl::Status s = reason == ForcedArmRefusal::kTurnedOff ? absl::PermissionDeniedError(message)
                                                          : absl::InvalidArgumentError(message);
  s.SetPayload(kForcedArmPayload, absl::Cord(reason == ForcedArmRefusal::kTurnedOff ? "off" : "invalid"));
  return s;
}

}  // namespace

std::optional<ForcedArmRefusal> ForcedArmRefusalOf(const absl::Status& s) {
  if (s.ok()) return std::nullopt;
  const auto reason = s.GetPayload(kForcedArmPayload);
  if (!reason) return std::nullopt;
  return ForcedArmRefusal{*reason == "off" ? ForcedArmRefusal::kTurnedOff : ForcedArmRefusal::kInvalid,
                          std::string(s.message())};
}

ExperimentalQueryEngine::ExperimentalQueryEngine(const QueryEngine* engine, ExperimentService* experiments)
    : ExperimentalQueryEngine([engine](const QueryRequest& q, const QueryVariant& v) { return engine->Query(q, v); },
                              experiments) {}

ExperimentalQueryEngine::ExperimentalQueryEngine(RunQuery run, ExperimentService* experiments)
    : run_(std::move(run)), experiments_(experiments) {}

absl::StatusOr<QueryResponse> ExperimentalQueryEngine::Query(const QueryRequest& q,
                                                             std::string_view force_arm_header) const {
  if (!experiments_) return run_(q, QueryVariant{});
  const auto t0 = std::chrono::steady_clock::now();
  // A QA override puts this one request in chosen arms; it is logged and never counted.
  std::vector<ForcedArm> forced;
  if (!force_arm_header.empty()) {
    if (!experiments_->force_arm_header())
      return Refusal(ForcedArmRefusal::kTurnedOff,
                     "X-Affinity-Force-Arm is turned off here (experiments.force_arm_header)");
    auto parsed = experiments_->ParseForcedArms(force_arm_header);
    if (!parsed.ok()) return Refusal(ForcedArmRefusal::kInvalid, std::string(parsed.status().message()));
    forced = *std::move(parsed);
  }
  const Assignment assigned = experiments_->Assign(q.viewer_id, q.target, forced);
  absl::StatusOr<QueryResponse> r = run_(q, assigned.variant);
  if (!forced.empty() && r.ok())
    spdlog::info("request {}: viewer {} served in arms forced by X-Affinity-Force-Arm '{}' (not counted in reports)",
                 r->request_id, q.viewer_id, force_arm_header);
  if (assigned.in.empty()) return r;
  if (r.ok()) {
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    experiments_->RecordResponse(assigned, q.viewer_id, *r, ms);
  } else if (r.status().code() != absl::StatusCode::kInvalidArgument) {  // a bad request is no arm's error
    experiments_->RecordError(assigned, q.viewer_id);
  }
  return r;
}

}  // namespace affinity
