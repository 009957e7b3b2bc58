// Candidate sources. Each reads the viewer's live state and the current snapshot
// and adds scored, attributed candidates of the target kind within its budget.
// All are pure functions of their inputs and safe to call concurrently.
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "base/config.h"
#include "candidates/candidate_set.h"
#include "features/snapshot.h"
#include "state/live_state.h"
#include "state/registry.h"

namespace affinity {

struct Anchor {
  Ref ref;
  float weight;
  Action action;
  bool seed;
  uint32_t recency = UINT32_MAX;  // 0 = the viewer's newest interaction; seeds 0; older engagement: none
};

struct SourceContext {
  const ServingOptions* options;
  const EntityRegistry* registry;
  const LiveState* live;
  const Snapshot* snapshot;  // may be null before the first batch
  Ref viewer;                // may be invalid (unknown viewer)
  const ViewerState* state;  // never null
  std::vector<Anchor> anchors;  // recent activity and seeds, strongest first
  int64_t now_ms = 0;
  // The viewer embedding (ViewerEmbedding), when the caller computed it once.
  std::vector<float> embedding;
  bool embedding_ready = false;

  // The viewer's recent interactions per creator (creator Ref bits -> count),
  // computed on first use; shared by the blend and the learned ranker's inputs.
  const std::unordered_map<uint32_t, int>& RecentCreators() const;

 private:
  mutable std::optional<std::unordered_map<uint32_t, int>> recent_creators_;
};

// Anchors from the viewer's recent interactions (recency-weighted) and the seeds,
// at most `o.max_anchors`. A recent interaction's weight halves per
// `o.anchor_half_life_hours` before the viewer's newest one and shrinks by
// `o.anchor_step_decay` per newer interaction, never below
// `o.anchor_min_weight`; older engagement weighs `o.anchor_older_share` of a
// fresh interaction (the serving.* settings; docs/architecture.md).
std::vector<Anchor> BuildAnchors(const ViewerState& state, const std::vector<Ref>& seeds, const ServingOptions& o);

// 2-hop through follows, weighted Adamic-Adar style; items from followed
// creators and from what followed people engaged with.
void GraphSource(const SourceContext& ctx, CandidateSet* out);
// Co-engagement neighbours of the anchors.
void CoEngagementSource(const SourceContext& ctx, CandidateSet* out);
// Nearest neighbours of the viewer's embedding (folded in from recent activity
// when the viewer is newer than the snapshot).
void AnnSource(const SourceContext& ctx, CandidateSet* out);
// Random walks with restart over the viewer-entity engagement graph (Pixie).
void WalkSource(const SourceContext& ctx, CandidateSet* out);
// Decayed popularity from the snapshot plus what is being engaged right now.
void PopularSource(const SourceContext& ctx, CandidateSet* out);

}  // namespace affinity
