// The feature-group registry: every feature group is declared once here with
// its entity kind, source (batch or stream), features, owner, description,
// version, freshness TTL and whether it is protected. This declaration is the
// governance: a group not declared here cannot be written to a feature store;
// a group past its TTL is masked at serving time and reported; a protected
// feature (the cohort label, sensitive attributes) may be read to measure
// fairness but is never an input of a ranker: a model or configuration that
// would use one is refused with its name.
// Thread safety: value types and pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "base/config.h"
#include "base/enum_names.h"
#include "features/feature_settings.h"

namespace affinity {

// Where a group's values come from: the batch snapshot, or the server's live
// state (and the catalogue) as events arrive. Its JSON spelling is the Name.
enum class FeatureSource { kBatch, kStream };
inline constexpr EnumNames<FeatureSource, 2> kFeatureSourceNames{
    {{{FeatureSource::kBatch, "batch"}, {FeatureSource::kStream, "stream"}}}};
inline std::string_view FeatureSourceName(FeatureSource s) { return kFeatureSourceNames.Name(s); }

struct FeatureGroup {
  std::string name;
  std::vector<std::string> components;  // the features it holds, in vector order
  std::string owner;                    // the producing job
  int64_t ttl_seconds = 0;              // older records are masked (0: never stale)
  bool is_protected = false;            // measures fairness, never ranks
  std::string entity_kind;              // "user", "entity" (any kind)
  FeatureSource source = FeatureSource::kBatch;
  std::string description;
  int version = 1;                      // bumped when a feature's definition changes
};

// The declared groups; `dim` is the embedding dimension.
std::vector<FeatureGroup> DeclaredFeatureGroups(int dim);
// The batch-sourced ones: what a snapshot's feature store holds.
std::vector<FeatureGroup> BatchFeatureGroups(int dim);
const FeatureGroup* FindFeatureGroup(const std::vector<FeatureGroup>& groups, const std::string& name);

// The declared groups with the configuration's settings applied. Refused, by
// name: an unknown group; unprotecting a protected group; protecting a group
// the rankers read (its features are inputs of the blend and the learned
// ranker, so protecting it cannot be honoured).
absl::Status ApplyFeatureSettings(const std::map<std::string, FeatureGroupSettings>& settings,
                                  std::vector<FeatureGroup>* groups);

// FailedPrecondition naming the first of `inputs` (a ranker's input names)
// that is a feature of a protected group.
absl::Status CheckNoProtectedInputs(const std::vector<std::string>& inputs, const std::vector<FeatureGroup>& groups);

// Group names.
inline constexpr const char* kGroupViewerEmbedding = "viewer_embedding";
inline constexpr const char* kGroupEntityEmbedding = "entity_embedding";
inline constexpr const char* kGroupPopularity = "popularity";
inline constexpr const char* kGroupGraph = "graph";
inline constexpr const char* kGroupEngagement = "engagement";         // stream
inline constexpr const char* kGroupViewerActivity = "viewer_activity";  // stream
inline constexpr const char* kGroupCreatorActivity = "creator_activity";  // stream
inline constexpr const char* kGroupViewerCreator = "viewer_creator";  // stream, keyed by (viewer, creator)
inline constexpr const char* kGroupViewerEntity = "viewer_entity";    // stream, keyed by (viewer, entity)
inline constexpr const char* kGroupCohort = "cohort";                 // protected

}  // namespace affinity
