// The learned ranker's inputs: one row of kNumRankInputs floats per (viewer,
// candidate), assembled from the serving path's candidates, the viewer's live
// state and the snapshot. The column order is part of every saved model and of
// every logged training row (audit records): append, never reorder.
// Thread safety: pure functions of their arguments.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "candidates/candidate_set.h"
#include "candidates/sources.h"
#include "ranking/blend.h"

namespace affinity {

// Inputs of one (viewer, candidate) row, in column order.
enum RankInput : int {
  kInBlendFeatures = 0,                          // the blend's normalised features (kNumFeatures)
  kInBlendScore = kInBlendFeatures + kNumFeatures,
  kInSourceScore,                                // raw score per source (kNumSources), 0 if not proposed
  kInSourceRank = kInSourceScore + kNumSources,  // rank within each source's list (kNumSources), 1000 if absent
  kInEmbeddingDot = kInSourceRank + kNumSources, // viewer . candidate factors, for every candidate
  kInCoengSupport,                               // anchors whose co-engagement lists hold it
  kInCoengBest,                                  // strongest single anchor's contribution
  kInCoengRecent,                                // co-engagement from the viewer's 5 newest interactions
  kInCoengBestRecency,                           // how recent the strongest anchor is (0 = newest; 1000: old or none)
  kInNewestCosine,                               // cosine to the factor of the viewer's newest interaction
  kInRecentCosine,                               // cosine to the mean factor of the viewer's 5 newest interactions
  kInRecentCosineMax,                            // highest cosine to any of the viewer's 10 newest interactions
  kInCoengNewest,                                // co-engagement weight with the viewer's newest interaction
  kInCoengNewest3,                               // co-engagement weight with the viewer's 3 newest interactions
  kInCoengRecent20,                              // summed co-engagement weight with the 20 newest (unweighted by recency)
  kInCoengRecent20Support,                       // how many of the 20 newest link to it
  kInCoengNearestRecency,                        // recency of the newest interaction linking to it (1000: none)
  kInBlendRank,                                  // position in the blend's order among the rows (0 = first)
  kInCoengReverse,                               // its own neighbour list: summed weight of the viewer's anchors in it
  kInCoengReverseRecent,                         // ... each anchor's weight shrunk by 0.8 per newer interaction
  kInCoengReverseSupport,                        // ... how many of its neighbours the viewer ever engaged with
  kInSessionNewest,                              // session co-engagement with the viewer's newest interaction
  kInSessionRecent,                              // ... with the 20 newest, each shrunk by 0.8 per newer interaction
  kInSessionSupport,                             // ... how many of the 20 newest link to it
  kInSessionReverse,                             // its own session list: the viewer's anchors in it, shrunk by 0.8 per newer one
  kInSessionReverseSupport,                      // ... how many of its session neighbours the viewer ever engaged with
  kInCommonNeighbours,                           // followed accounts linking to it
  kInCreatorRecent,                              // viewer's recent interactions with its creator
  kInLogEngagers,                                // log(1 + engagers) at the snapshot
  kInLogFollowers,                               // log(1 + followers), live
  kInViewerActivity,                             // log(1 + entities the viewer engaged with)
  kInViewerAnchors,                              // anchors (recent activity + seeds)
  kInViewerFollows,                              // log(1 + accounts the viewer follows)
  kInAgeHours,                                   // since its first engagement (-1: never engaged)
  kInHoursSinceEngaged,                          // since its last engagement (-1: never)
  kInFeaturesFresh,                              // 1 when the snapshot's feature groups are within TTL
  kInNewerThanSnapshot,                          // 1 when the snapshot has no row for it yet
  // The streaming groups, as of the query (a logged row keeps these values):
  kInEntityCount1h,                              // log(1 + its engagement decayed at a 1 h half-life)
  kInEntityCount1d,                              // ... at 1 day
  kInEntityCount7d,                              // ... at 7 days
  kInEntityTrend,                                // 24 x the 1 h count over the 1 d count (1: steady; 0: none)
  kInCreatorCount1d,                             // log(1 + its creator's engagement at 1 day); a creator's own
  kInCreatorVelocity,                            // its creator's 24 x 1 h over 1 d count
  kInViewerCreatorEngagements,                   // log(1 + the viewer's positive events with its creator)
  kInViewerCreatorHours,                         // since the viewer last engaged its creator (-1: not among its 64)
  kInViewerEntityHours,                          // since the viewer last engaged it (-1: not among the 64 newest)
  kNumRankInputs
};
// The inputs read from the streaming groups: [kFirstStreamInput, kNumRankInputs).
inline constexpr int kFirstStreamInput = kInEntityCount1h;

// The inputs' names, in column order (explanations, docs, audit expansion).
const std::vector<std::string>& RankerInputNames();

// Fills rows.size() x kNumRankInputs floats for the scored candidates `rows` of
// `set`, which come in the blend's order (best first).
void AssembleRankerInputs(const SourceContext& ctx, const CandidateSet& set, const std::vector<Scored>& rows,
                          float* out);

// One row of kNumRankInputs values as logged in audit records: float32
// little-endian, base64. A shorter row (logged before inputs were appended)
// decodes with NaN (missing) for the inputs it lacks; a longer one (a newer
// build's) or an empty one fails.
std::string EncodeRankerRow(const std::vector<float>& row);
bool DecodeRankerRow(std::string_view base64, std::vector<float>* row);

}  // namespace affinity
