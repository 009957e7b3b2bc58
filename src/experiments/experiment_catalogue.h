// The experiments a server runs, as definitions: their validation (model
// versions, overrides, room in a layer), creation, stop and listing; the
// assignment of a query's viewer to arms; the X-Affinity-Force-Arm override.
// Every change of a definition is saved through the ExperimentStateStore
// before it is published.
// Thread safety: all methods are safe for concurrent use. Assign() and the
// reads take an atomically swapped set of entries and never block on an admin
// change; changes serialise on one mutex.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "base/clock.h"
#include "base/config.h"
#include "experiments/experiment.h"
#include "experiments/experiment_state_store.h"
#include "serving/query_engine.h"

namespace affinity {

struct ExperimentEntry;  // experiment_entry.h
struct EntryState;

// A QA override: the request is served in this arm of this experiment.
struct ForcedArm {
  std::string experiment;
  int arm;
};

// The experiments a query's viewer is in and how it is served.
struct Assignment {
  QueryVariant variant;
  struct In {
    std::shared_ptr<const ExperimentEntry> entry;  // keeps the experiment alive for the bookkeeping
    int arm;
  };
  std::vector<In> in;  // counted arms (forced ones are named in the variant only)
};

class ExperimentCatalogue {
 public:
  // Loads a model version (for arms that name one).
  using ModelLoader = std::function<absl::StatusOr<std::shared_ptr<const LearnedRanker>>(const std::string&)>;
  // The model versions the registry knows (for validation).
  using ModelVersions = std::function<std::vector<std::string>()>;
  using Set = std::vector<std::shared_ptr<const ExperimentEntry>>;
  // Called with an arm a guardrail stops, under the admin lock, before the change is saved.
  using OnArmStop = std::function<void(const std::string& id, const ExperimentArm& arm)>;

  ExperimentCatalogue(ExperimentStateStore* state, const ServingOptions& serving, const Clock* clock, ModelLoader load_model,
                      ModelVersions model_versions);

  // Reads every experiment, its counters and running minimums.
  absl::Status Load();

  // InvalidArgument (422) naming the field, AlreadyExists (409) for an id in use.
  absl::StatusOr<std::string> Create(std::string_view json);
  absl::StatusOr<std::string> Create(Experiment e);
  absl::Status Stop(const std::string& id, const std::string& reason);
  // Stops one arm (its viewers are served as the control); nothing when it is already stopped.
  absl::Status StopArm(const std::string& id, int arm, const std::string& reason, const OnArmStop& on_stop);

  std::shared_ptr<const ExperimentEntry> Find(const std::string& id) const;
  std::shared_ptr<const Set> Entries() const { return set_.load(); }
  std::vector<Experiment> Definitions() const;
  std::vector<std::shared_ptr<const LearnedRanker>> ArmModels() const;
  std::string ListJson() const;
  absl::StatusOr<std::string> GetJson(const std::string& id) const;  // NotFound (404)

  // `forced` puts the request in those arms whatever the hash says.
  Assignment Assign(const std::string& viewer_id, Kind target, const std::vector<ForcedArm>& forced) const;
  // "exp1=treatment[,exp2=arm]": InvalidArgument naming an unknown or stopped
  // experiment or an unknown arm.
  absl::StatusOr<std::vector<ForcedArm>> ParseForcedArms(std::string_view spec) const;

  const Clock* clock() const { return clock_; }

 private:
  std::shared_ptr<const ExperimentEntry> MakeEntry(Experiment def, std::shared_ptr<EntryState> state) const;
  // Replaces (or adds) one entry in the set, saving its definition first.
  absl::Status Publish(std::shared_ptr<const ExperimentEntry> entry);
  absl::Status Validate(const Experiment& e, const Set& set) const;
  // The first free slice of e's layer, or InvalidArgument.
  absl::StatusOr<int> FreeSlice(const Experiment& e, const Set& set) const;
  // The serving of several arms at once (one per layer).
  std::shared_ptr<const ArmServing> Combine(const std::vector<std::shared_ptr<const ArmServing>>& serving,
                                            const std::vector<const ExperimentArm*>& arms) const;

  ExperimentStateStore* state_;
  ServingOptions serving_;  // what an arm's overrides change
  const Clock* clock_;
  ModelLoader load_model_;
  ModelVersions model_versions_;
  std::atomic<std::shared_ptr<const Set>> set_;
  std::mutex admin_mu_;  // serialises create, stop and guardrail stops
};

}  // namespace affinity
