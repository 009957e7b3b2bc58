// The transparent blend ranker: a linear model over normalised per-candidate
// features. Its per-feature contributions (weight x value) are exact additive
// attributions: base (0) plus the contributions equals the score.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "base/config.h"
#include "candidates/candidate_set.h"
#include "candidates/sources.h"

namespace affinity {

enum Feature : uint8_t {
  kFeatSocialGraph = 0,
  kFeatRandomWalk,
  kFeatEmbedding,
  kFeatCoEngagement,
  kFeatPopularity,
  kFeatTrending,
  kFeatCreatorAffinity,
  kFeatAlreadyEngaged,
  kNumFeatures
};
const char* FeatureName(Feature f);

struct Scored {
  uint32_t index;  // into the CandidateSet
  double score;
  std::array<float, kNumFeatures> value;
  std::array<float, kNumFeatures> contribution;
};

class BlendRanker {
 public:
  explicit BlendRanker(const ServingOptions& options);
  // Computes features and scores for every candidate (unsorted).
  std::vector<Scored> Score(const SourceContext& ctx, const CandidateSet& set) const;
  std::string version() const { return "blend-v1"; }

 private:
  std::array<float, kNumFeatures> weights_;
  float graph_weight_users_;
};

}  // namespace affinity
