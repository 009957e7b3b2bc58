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
  std::atomic<uint64_t> events_applied_{0};
  std::atomic<int64_t> last_event_ts_{0};
  std::mutex apply_mu_;
};

}  // namespace affinity
