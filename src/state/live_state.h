// Streaming state, updated by every accepted feedback event within the request
// that accepted it: per-viewer follows, hidden set and recent interactions;
// per-entity decayed engagement counts and follower counts; a ring of recently
// engaged entities per kind (what is trending right now).
// Rebuilt at start by replaying the durable follow graph and event log.
// Thread safety: readers never block; writers serialise inside Apply(). Viewer
// state is copy-on-write and published atomically.
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "base/chunked_array.h"
#include "base/config.h"
#include "base/ids.h"
#include "events/event.h"
#include "store/store.h"

namespace affinity {

struct Interaction {
  Ref entity;
  Action action;
  float weight;
  int64_t ts;
};

struct ViewerState {
  static constexpr size_t kMaxRecent = 64;
  static constexpr size_t kMaxFeedback = 100;
  std::vector<Ref> follows;           // sorted
  std::vector<Ref> hidden;            // sorted
  std::vector<Interaction> recent;    // positive interactions, oldest first
  std::vector<Ref> engaged;           // every entity ever engaged positively, sorted
  std::vector<uint64_t> feedback;     // log offsets of the newest kMaxFeedback events (any action), oldest first
  uint32_t events = 0;                // events ever applied for this viewer
  int64_t last_ts = 0;

  bool Follows(Ref r) const;
  bool Hid(Ref r) const;
  bool Engaged(Ref r) const;
};

// Decayed counts of positive engagement weight at three half-lives (1 h, 1 day,
// 7 days) per (kind, id): the streaming feature groups. One packed atomic
// (float count, uint32 seconds of its last update) per half-life and id, so
// readers never block; writers are serialised by their owner.
class DecayedCounters {
 public:
  static constexpr int kHalfLives = 3;
  static constexpr int64_t kHalfLifeMs[kHalfLives] = {3600LL * 1000, 86400LL * 1000, 7 * 86400LL * 1000};
  void Add(Ref r, double weight, int64_t ts_ms);
  // The counts as of now_ms, in kHalfLifeMs order.
  std::array<double, kHalfLives> Get(Ref r, int64_t now_ms) const;
  int64_t LastMs(Ref r) const;  // the newest update (ms, second resolution; 0: none)

 private:
  std::array<std::array<ChunkedArray<std::atomic<uint64_t>>, kNumKinds>, kHalfLives> slots_;
};

class LiveState {
 public:
  // half_life_ms: decay of per-entity engagement counters.
  explicit LiveState(const ActionWeights& weights, int64_t half_life_ms = 24 * 3600 * 1000LL);

  // Rebuilds everything from the store (follow graph, then the event log).
  absl::Status Load(const Store& store);

  // Applies accepted events (already durable), in order.
  void Apply(const std::vector<Event>& events);

  // Never null (an empty state for viewers with no history).
  std::shared_ptr<const ViewerState> Viewer(Ref viewer) const;
  // Decayed engagement count of an entity, as of now_ms.
  double Engagement(Ref r, int64_t now_ms) const;
  uint32_t Followers(Ref r) const;
  // When an entity was first and last engaged positively (ms; 0 when never).
  int64_t FirstEngagedMs(Ref r) const;
  int64_t LastEngagedMs(Ref r) const;
  // Streaming groups: decayed engagement at 1 h / 1 d / 7 d half-lives of an
  // entity, of a viewer (what it engaged with) and of a creator (its items and
  // itself); creators need SetCreatorOf before Load.
  std::array<double, DecayedCounters::kHalfLives> EntityCounts(Ref r, int64_t now_ms) const {
    return entity_counts_.Get(r, now_ms);
  }
  std::array<double, DecayedCounters::kHalfLives> ViewerCounts(Ref viewer, int64_t now_ms) const {
    return viewer_counts_.Get(viewer, now_ms);
  }
  std::array<double, DecayedCounters::kHalfLives> CreatorCounts(Ref creator, int64_t now_ms) const {
    return creator_counts_.Get(creator, now_ms);
  }
  int64_t CreatorLastEngagedMs(Ref creator) const { return creator_counts_.LastMs(creator); }
  // Maps an item to its creator (a creator to itself) for the creator counts.
  void SetCreatorOf(std::function<Ref(Ref)> creator_of) { creator_of_ = std::move(creator_of); }
  // Most recently engaged distinct entities of a kind, newest first.
  std::vector<Ref> Recent(Kind k, size_t n) const;

  uint64_t events_applied() const { return events_applied_.load(std::memory_order_relaxed); }
  int64_t last_event_ts() const { return last_event_ts_.load(std::memory_order_relaxed); }

 private:
  static constexpr size_t kRing = 2048;
  void ApplyToViewer(ViewerState& v, const Event& e);
  void ApplyToEntity(const Event& e);
  void PublishViewer(Ref viewer, std::shared_ptr<const ViewerState> state);

  ActionWeights weights_;
  int64_t half_life_ms_;
  ChunkedArray<std::atomic<std::shared_ptr<const ViewerState>>> viewers_;
  // Per kind: packed (float count, uint32 seconds of its last update).
  std::array<ChunkedArray<std::atomic<uint64_t>>, kNumKinds> engagement_;
  std::array<ChunkedArray<std::atomic<uint32_t>>, kNumKinds> followers_;
  std::array<ChunkedArray<std::atomic<uint32_t>>, kNumKinds> first_seen_;  // seconds
  std::array<std::array<std::atomic<uint32_t>, kRing>, kNumKinds> ring_{};
  std::array<std::atomic<uint64_t>, kNumKinds> ring_pos_{};
  DecayedCounters entity_counts_, viewer_counts_, creator_counts_;
  std::function<Ref(Ref)> creator_of_;
  std::atomic<uint64_t> events_applied_{0};
  std::atomic<int64_t> last_event_ts_{0};
  std::mutex apply_mu_;
};

}  // namespace affinity
