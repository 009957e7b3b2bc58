// The feature-group registry: every feature group is declared once with its
// components, owner, freshness TTL and whether the ranker may use it. This
// declaration is the governance: a group not declared here cannot be written to
// a feature store, and a group past its TTL is masked at serving time and
// reported in /admin/stats.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace affinity {

struct FeatureGroup {
  std::string name;
  std::vector<std::string> components;
  std::string owner;        // the producing job
  int64_t ttl_seconds = 0;  // older records are masked
  bool rankable = false;    // whether ranking may use it (cohort labels never are)
};

// The declared groups; `dim` is the embedding dimension.
std::vector<FeatureGroup> DeclaredFeatureGroups(int dim);
const FeatureGroup* FindFeatureGroup(const std::vector<FeatureGroup>& groups, const std::string& name);

// Group names.
inline constexpr const char* kGroupViewerEmbedding = "viewer_embedding";
inline constexpr const char* kGroupEntityEmbedding = "entity_embedding";
inline constexpr const char* kGroupPopularity = "popularity";
inline constexpr const char* kGroupGraph = "graph";

}  // namespace affinity
