// The model registry: versions of the learned re-ranker under <data>/models,
// one directory per version (model.json, ranker.json) and registry.json naming
// every version's metadata — training watermark, parameters, offline metrics,
// creation time — which one is current and the promotion history.
// registry.json is replaced atomically (write + rename) under an exclusive
// lock file, so `affinity batch`, `affinity model ...` and a running server can
// use it together; servers poll it and swap models without a pause
// (models/model_watcher.h).
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "base/clock.h"
#include "base/enum_names.h"
#include "ranking/learned_ranker.h"

namespace affinity {

// How a version ships: the registry's state machine.
//   registered ──gate refuses (batch)──► refused
//   registered ──gate passes (batch)──► canary-pending ──a server starts it──► canary
//   canary ──its experiment decides──► promoted | rolled-back
//   canary-pending | canary ──a newer canary starts──► superseded
//   any ──`model promote` (by hand)──► promoted
//   the current model ──`model rollback`──► rolled-back (the previous one, or the blend, serves)
enum class ModelState { kRegistered, kRefused, kCanaryPending, kCanary, kPromoted, kRolledBack, kSuperseded };
// "registered", "refused", "canary-pending", "canary", "promoted", "rolled-back", "superseded".
std::string_view ModelStateName(ModelState s);
// The state named `name` ("" and unknown names: registered).
ModelState ParseModelState(std::string_view name);
inline bool operator==(ModelState s, std::string_view name) { return ModelStateName(s) == name; }
std::ostream& operator<<(std::ostream& out, ModelState s);

// How a version's held-out groups were chosen: by HoldoutRule over each logged
// response's request id ("request-id"), or not known ("": trained elsewhere).
enum class HoldoutBy { kUnknown, kRequestId };
inline constexpr EnumNames<HoldoutBy, 2> kHoldoutByNames{
    {{{HoldoutBy::kUnknown, ""}, {HoldoutBy::kRequestId, "request-id"}}}};

// When a version's file checksums were recorded: at registration
// ("registered"), at its first load (an entry written before checksums were
// kept: "first-load"), or not yet ("").
enum class ChecksumOrigin { kNone, kRegistered, kFirstLoad };
inline constexpr EnumNames<ChecksumOrigin, 3> kChecksumOriginNames{
    {{{ChecksumOrigin::kNone, ""},
      {ChecksumOrigin::kRegistered, "registered"},
      {ChecksumOrigin::kFirstLoad, "first-load"}}}};

struct ModelVersion {
  std::string version;             // "m000003"
  int64_t created_ms = 0;
  uint64_t watermark_offset = 0;   // events below this offset were used for training
  int64_t watermark_ts = 0;
  std::string source;              // "logged-impressions", "eval-validation", ...
  std::string params_json;         // the training parameters
  double ndcg = 0;                 // validation NDCG@k of this model on its held-out groups
  double blend_ndcg = 0;           // the blend's on the same groups
  double current_ndcg = -1;        // the then-current model's on the compared groups (-1: none)
  // The compared groups: this model's held-out groups that the then-current
  // model never trained on either (held out by the same rule, or newer than
  // its training watermark); compared_ndcg is this model's NDCG@k on them.
  double compared_ndcg = -1;
  int64_t compared_groups = 0;
  int64_t train_groups = 0, validation_groups = 0, train_rows = 0;
  // How its held-out groups were chosen (with this share and seed; a later
  // run with the same rule holds out the same responses again).
  HoldoutBy holdout = HoldoutBy::kUnknown;
  double holdout_share = 0;
  uint64_t holdout_seed = 0;
  // How the version ships (ModelState); note says why, in words (for a
  // refused version, the gate's reason).
  struct Rollout {
    ModelState state = ModelState::kRegistered;
    std::string note, experiment;
    double share = 0;             // percent of viewers the canary serves
    int64_t min_viewers = 0;      // canary viewers before the decision
    double max_increase = 0;      // guardrails: hide and error rate
    double max_latency_increase = 0;
    int64_t started_ms = 0, decided_ms = 0;
  } rollout;
  // SHA-256 (hex) of each of the version's files (model.json, ranker.json),
  // checked at every load: a file that differs is refused. Recorded when the
  // version is registered (kRegistered); an entry written before checksums
  // were kept has none, loads once unverified and has them recorded then
  // (kFirstLoad), so a later change is caught.
  std::map<std::string, std::string> checksums;
  ChecksumOrigin checksummed = ChecksumOrigin::kNone;
};

struct RegistryState {
  std::vector<ModelVersion> versions;  // oldest first
  std::string current;                 // "" when no model is promoted
  std::vector<std::string> history;    // previously current versions, oldest first
  std::string canary;                  // the version in canary ("" none)

  ModelVersion* Find(const std::string& version);
  const ModelVersion* Find(const std::string& version) const;
};

// What a canary runs with (from [ranker] of the batch that trained the model).
struct CanaryPlan {
  double share = 10;
  int64_t min_viewers = 1500;
  double max_increase = 0.2;
  double max_latency_increase = 0.5;
};

// Where the registry's state (versions, current, history, canary) lives: read
// whole, changed atomically. Every reader and writer of that state goes through
// one of these; the model files themselves stay in the version directories.
// The single-machine implementation is registry.json under a lock file
// (FileRegistryStateStore, models/registry_file_store.h).
class RegistryStateStore {
 public:
  using Change = std::function<absl::StatusOr<bool>(RegistryState&)>;
  virtual ~RegistryStateStore() = default;
  // The state now (empty when nothing was ever registered); DataLoss when it
  // cannot be read back.
  virtual absl::StatusOr<RegistryState> Read() const = 0;
  // Applies `change` to the state as it is now and, when it returns true,
  // writes the result; no other Update interleaves, and a crash leaves the
  // state before or after. `create`: the store may be made now (the first
  // registration); otherwise a registry that does not exist is NotFound.
  virtual absl::Status Update(const Change& change, bool create) = 0;
  // Where the state lives, for messages ("<data>/models/registry.json").
  virtual std::string Where() const = 0;
};

class ModelRegistry {
 public:
  // The registry of `data_dir`, its state in registry.json. `clock` dates what
  // the registry records (creation, rollout decisions).
  explicit ModelRegistry(std::string data_dir, const Clock* clock = SystemClock::Default());
  // The same with its state kept by `state` (shared by copies of this registry).
  ModelRegistry(std::string data_dir, std::shared_ptr<RegistryStateStore> state,
                const Clock* clock = SystemClock::Default());

  absl::StatusOr<RegistryState> Read() const;
  // Saves `model` as a new version with `meta` (version and created_ms are set
  // here) and returns the version name. Not promoted.
  absl::StatusOr<std::string> Register(const LearnedRanker& model, ModelVersion meta);
  // Registers a model saved outside the registry (e.g. `eval --save-model`),
  // with the metrics of its validation.json when there is one.
  absl::StatusOr<std::string> Import(const std::string& model_dir);
  // Makes `version` current. The gate refuses (FailedPrecondition) a model whose
  // validation NDCG is below the current model's by more than `tolerance`
  // (compared on the same held-out data when the registry has that figure), or
  // below the blend's when no model is current; `force` skips the gate. The
  // version's state becomes promoted, with `note` (default: by hand).
  absl::Status Promote(const std::string& version, double tolerance, bool force = false, std::string note = "");
  // Makes the previously current version current again, or, from the first
  // promoted model, none (the blend serves): returns the version now current
  // ("" for the blend). The version rolled back from is marked rolled-back.
  // FailedPrecondition when no model is current.
  absl::StatusOr<std::string> Rollback();

  // Canary rollout. StartCanary marks `version` as waiting for a server to
  // start its canary experiment (a canary still pending or running is
  // superseded). MarkCanaryRunning records the experiment that serves it.
  // FinishCanary ends it: promoted (made current) or rolled back, with why;
  // a no-op when `version` is no longer the canary. Each is one atomic
  // registry write under the lock, so a crash leaves either state.
  absl::Status StartCanary(const std::string& version, const CanaryPlan& plan);
  absl::Status MarkCanaryRunning(const std::string& version, const std::string& experiment);
  absl::Status FinishCanary(const std::string& version, bool promote, const std::string& note);
  // Loads a version's model once its files match the checksums of its registry
  // entry (DataLoss naming the file otherwise: the model is refused). A
  // version without checksums (registered before they were kept) loads
  // unverified and has its checksums recorded now. NotFound for a version the
  // registry does not hold.
  absl::StatusOr<std::unique_ptr<LearnedRanker>> Load(const std::string& version);
  std::string dir() const { return dir_; }

 private:
  absl::Status Update(const RegistryStateStore::Change& change) { return state_->Update(change, false); }
  std::string dir_;
  std::shared_ptr<RegistryStateStore> state_;
  const Clock* clock_;
};

// registry.json's form of a state; GET /admin/models adds the version a server
// has `loaded`. ParseRegistryJson reads either back (DataLoss naming what is
// wrong); RegistryLoaded finds `loaded` (false: the text has none).
std::string RegistryJson(const RegistryState& st, const std::string* loaded = nullptr);
absl::StatusOr<RegistryState> ParseRegistryJson(std::string_view json);
bool RegistryLoaded(std::string_view json, std::string* loaded);

// Why the gate refuses `candidate` against `current`, or nothing when it passes.
std::optional<std::string> GateRefusal(const ModelVersion& candidate, const ModelVersion* current, double tolerance);

}  // namespace affinity
