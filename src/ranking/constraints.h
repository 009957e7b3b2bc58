// The last ranking stage: picks the k results from candidates already ordered by
// score, under the response's constraints:
//   - at most `per_creator_cap` results from one creator (0: no cap);
//   - diversity by maximal marginal relevance (MMR): each slot goes to the
//     candidate maximising (1 - diversity) * relevance - diversity * (highest
//     cosine similarity of its embedding to a result already picked), with
//     relevance the score min-max normalised over the window considered;
//   - an exposure floor for new creators: at least floor(share * k) results
//     come from new creators when the candidates hold that many; they replace
//     the lowest-placed results that are not from new creators, and never one
//     of the first `floor_protected_head` results. Rounding down means a short
//     list keeps its best results: at the default share of 0.1 the floor takes
//     its first slot at k = 10 (the 10th), its second at k = 20.
// Pure function; thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "base/ids.h"

namespace affinity {

struct ConstraintOptions {
  int k = 20;
  int per_creator_cap = 3;
  double diversity = 0;          // MMR weight in [0, 1); 0 keeps the score order
  int diversity_window = 200;    // candidates MMR looks at (the best by score)
  double new_creator_share = 0;  // share of the k slots reserved for new creators (rounded down)
  int floor_protected_head = 3;  // the first results the floor never replaces
};

struct ConstraintCandidate {
  double score = 0;
  Ref creator;                    // its creator (items), itself (creators), invalid otherwise
  bool new_creator = false;
  const float* embedding = nullptr;  // `dim` floats or null
};

struct Pick {
  uint32_t index;         // into the candidates
  bool floor = false;     // placed by the new-creator exposure floor
};

// `candidates` ordered best first.
std::vector<Pick> ApplyConstraints(const std::vector<ConstraintCandidate>& candidates, int dim,
                                   const ConstraintOptions& options);

}  // namespace affinity
