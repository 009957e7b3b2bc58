#include "features/feature_registry.h"

namespace affinity {

std::vector<FeatureGroup> DeclaredFeatureGroups(int dim) {
  std::vector<std::string> als;
  for (int i = 0; i < dim; ++i) als.push_back("als_" + std::to_string(i));
  const int64_t day = 86400;
  return {
      {kGroupViewerEmbedding, als, "batch/als", 7 * day, true},
      {kGroupEntityEmbedding, als, "batch/als", 7 * day, true},
      {kGroupPopularity, {"decayed_count", "percentile"}, "batch/popularity", 2 * day, true},
      {kGroupGraph, {"followers", "following", "engagers"}, "batch/graph", 7 * day, true},
  };
}

const FeatureGroup* FindFeatureGroup(const std::vector<FeatureGroup>& groups, const std::string& name) {
  for (const auto& g : groups)
    if (g.name == name) return &g;
  return nullptr;
}

}  // namespace affinity
