// Explanations of the returned results: the human-readable reason (from the
// strongest positive contribution, with social proof when there is any) and,
// for results the learned ranker scored, its attributions with the base margin
// handed back to the blend features it is made of.
// Thread safety: const methods are safe for concurrent use.
#pragma once

#include <string>
#include <vector>

#include "candidates/candidate_set.h"
#include "query/query.h"
#include "ranking/learned_ranker.h"
#include "state/registry.h"

namespace affinity {

// What a reason may say about the viewer.
struct ReasonContext {
  bool cold_start = false;        // no history and no seeds
  bool has_history = false;       // the viewer engaged with something before
  const std::vector<Ref>* seeds = nullptr;
  int similar_min_support = 3;    // distinct co-engagers a link needs to be called similar
};

class Explainer {
 public:
  explicit Explainer(const EntityRegistry* registry) : registry_(registry) {}
  // One sentence: "because you played X", "followed by 3 people you follow: a,
  // b, c and 2 more", "creator of X", ... `r` carries the blend contributions.
  std::string Reason(const QueryResult& r, const Candidate& c, const ReasonContext& rc) const;
  // An entity's display name (attributes.name), else its id.
  std::string DisplayName(Ref r) const;

 private:
  // Whether a reason may name it: never a deleted entity (nor an item of a
  // deleted creator), which a reason would otherwise bring back into view.
  bool Nameable(Ref r) const;
  std::string SocialProof(const Candidate& c) const;
  std::string CoEngagementReason(const Candidate& c, int min_support) const;
  const EntityRegistry* registry_;
};

// Attributions from `learned` for the results it scored, in one batch: exact
// TreeSHAP for explain "full", else `configured_method`. The row's base margin
// (margin_scale x blend score) moves from the bias to the blend features, so
// the base is the model's constant and every input carries its share.
void AttachLearnedAttributions(const LearnedRanker& learned, ExplainMode explain, AttributionMethod configured_method,
                               QueryResponse* response);

}  // namespace affinity
