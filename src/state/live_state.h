// Streaming state, updated by every accepted feedback event within the request
// that accepted it: per-viewer follows, hidden set and recent interactions;
// per-entity decayed engagement counts and follower counts; a ring of recently
// engaged entities per kind (what is trending right now).
// Rebuilt at start from its newest checkpoint (a file holding all of it and
// the log offsets it covers) plus the event log's tail, or by replaying the
// whole log when there is no usable checkpoint.
// Thread safety: readers never block; writers serialise inside Apply(). Viewer
// state is copy-on-write and published atomically.
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <memory>
#include <mutex>
#include <vector>

#include "base/chunked_array.h"
#include "base/frozen_array.h"
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

// A viewer's positive engagement with one creator (with its items or itself).
struct CreatorTouch {
  Ref creator;
  uint32_t count = 0;   // positive events
  int64_t last_ts = 0;  // the newest of them (ms)
};

struct ViewerState {
  static constexpr size_t kMaxRecent = 64;
  static constexpr size_t kMaxFeedback = 100;
  static constexpr size_t kMaxCreators = 64;
  std::vector<Ref> follows;           // sorted
  std::vector<Ref> hidden;            // sorted
  std::vector<Interaction> recent;    // positive interactions, oldest first
  std::vector<Ref> engaged;           // every entity ever engaged positively, sorted
  std::vector<uint64_t> feedback;     // log offsets of the newest kMaxFeedback events (any action), oldest first
  std::vector<CreatorTouch> creators; // sorted by creator: the kMaxCreators most recently engaged
  uint32_t events = 0;                // events ever applied for this viewer
  int64_t last_ts = 0;

  bool Follows(Ref r) const;
  bool Hid(Ref r) const;
  bool Engaged(Ref r) const;
  // Viewer-creator recency: nullptr when the creator is not among `creators`.
  const CreatorTouch* Creator(Ref creator) const;
  // Viewer-entity recency: the newest positive interaction with r among
  // `recent` (ms), 0 when none there.
  int64_t LastEngagedMs(Ref r) const;
};

// What a checkpoint of the live state covers: every event of the log below
// `offset`, and those in `ahead` ([begin, end) ranges applied out of order).
struct CheckpointInfo {
  uint64_t offset = 0;
  std::vector<std::pair<uint64_t, uint64_t>> ahead;
  uint64_t events = 0;      // events the state had applied
  int64_t last_event_ts = 0;
  int64_t created_ms = 0;   // when it was written
  uint64_t bytes = 0;
  double seconds = 0;       // to write it (or to read it back)
  double locked_seconds = 0;  // of which Apply (ingest) waited: the copy under its lock
};

// How LiveState::Load rebuilt the state.
struct LiveLoadReport {
  bool from_checkpoint = false;
  std::string checkpoint_refused;  // why a checkpoint on disk was not used ("" when none or used)
  CheckpointInfo checkpoint;       // the one used
  uint64_t replayed = 0;           // events read from the log (its tail, or all of it)
  double seconds = 0;
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
  void Prefetch(Ref r) const;  // asks the CPU for r's slot ahead of an Add
  // Copies the packed values of one half-life and kind (index = dense id).
  std::vector<uint64_t> Dump(int h, int kind) const;
  void Restore(int h, int kind, const FrozenArray<uint64_t>& packed);
  // The same for the newest update's time (ms).
  std::vector<int64_t> DumpLastMs(int kind) const;
  void RestoreLastMs(int kind, const FrozenArray<int64_t>& ms);
  // The counts as of now_ms, in kHalfLifeMs order.
  std::array<double, kHalfLives> Get(Ref r, int64_t now_ms) const;
  int64_t LastMs(Ref r) const;  // the newest update (ms; 0: none)
  void Clear(Ref r);             // back to never updated (forgetting a person)

 private:
  // An id's three half-lives side by side, and the newest update's time to the
  // millisecond (the packed counts keep seconds): half a cache line per read
  // or update.
  struct Slot {
    std::atomic<uint64_t> packed[kHalfLives];
    std::atomic<int64_t> last_ms;
  };
  std::array<ChunkedArray<Slot>, kNumKinds> slots_;
};

class LiveState {
 public:
  // half_life_ms: decay of per-entity engagement counters.
  explicit LiveState(const ActionWeights& weights, int64_t half_life_ms = 24 * 3600 * 1000LL);

  // Rebuilds everything: from the checkpoint at checkpoint_path plus the
  // log's tail when that file exists and fits this store (known: the
  // registry's entity count per kind), else by replaying the whole log. A
  // checkpoint that does not fit is reported and left for the next one to
  // replace. Call before any Apply.
  absl::StatusOr<LiveLoadReport> Load(const EventLog& log, const std::string& checkpoint_path = "",
                                      const std::array<uint32_t, kNumKinds>& known = {});
  // A checkpoint read and checked on its own: it needs no registry, so a
  // server reads it while the registry loads, and Load installs it.
  struct CheckpointImage;
  absl::StatusOr<std::shared_ptr<CheckpointImage>> ReadCheckpoint(const std::string& path) const;
  // As above, with the checkpoint already read: nullptr when there is none, an
  // error when it could not be read (reported as refused; the log replayed).
  absl::StatusOr<LiveLoadReport> Load(const EventLog& log, absl::StatusOr<std::shared_ptr<CheckpointImage>> checkpoint,
                                      const std::array<uint32_t, kNumKinds>& known);
  // Writes all of the state, with the offsets it covers, to path atomically.
  // Holds off Apply only while it copies (pointers and counters), never while
  // it encodes or writes.
  absl::StatusOr<CheckpointInfo> WriteCheckpoint(const std::string& path, int64_t now_ms) const;
  // Every event below this offset has been applied (plus applied_ahead()).
  uint64_t applied_offset() const { return applied_through_.load(std::memory_order_relaxed); }

  // Applies accepted events (already durable), in order.
  void Apply(const std::vector<Event>& events);
  // Forgetting a person (docs/security.md, "Forget"):
  // their viewer state and every counter of their slot are cleared, and
  // `removed` (their events as viewer and as entity, deleted from the log) is
  // taken out: the decayed counts and follower counts of what they engaged
  // with or followed, and, in the state of each viewer who engaged with or
  // followed them, every trace of them. What cannot be taken out exactly is
  // left: the first-engaged times of other entities and the recency rings'
  // entries of what they engaged with (which record an entity, not who).
  void Forget(Ref person, const std::vector<Event>& removed);

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
  Ref CreatorOf(Ref entity) const;  // the entity's creator (itself for a creator); invalid for users
  // One event as the live state applies it: its viewer's side (the viewer's
  // own state) fills in followers_delta, the entity's side (per-entity
  // engagement and followers, the decayed counters, the rings) reads it.
  struct Change {
    uint64_t offset;
    int64_t ts;
    Ref viewer, entity, creator;  // creator: the entity's, when it counts for one
    Action action;
    float weight;
    int8_t followers_delta = 0;  // +1: the viewer now follows the entity; -1: no longer
  };
  Change ToChange(const Event& e) const;
  void ApplyToViewer(ViewerState& v, Change& c);
  void ApplyToEntity(const Change& c);
  void PrefetchEntity(const Change& c) const;  // what ApplyToEntity(c) will touch
  // Both sides, in that order; under apply_mu_.
  void ApplyOne(ViewerState& v, const Event& e) {
    Change c = ToChange(e);
    ApplyToViewer(v, c);
    ApplyToEntity(c);
  }
  void PublishViewer(Ref viewer, std::shared_ptr<const ViewerState> state);
  void NoteApplied(uint64_t offset);  // under apply_mu_
  // Installs a checkpoint read whole by ReadCheckpoint, only when all of it
  // fits: the log's end and the registry's entities.
  absl::Status InstallCheckpoint(CheckpointImage& image, const std::array<uint32_t, kNumKinds>& known,
                                 uint64_t log_end, CheckpointInfo* info);

  ActionWeights weights_;
  int64_t half_life_ms_;
  ChunkedArray<std::atomic<std::shared_ptr<const ViewerState>>> viewers_;
  // Per kind: packed (float count, uint32 seconds of its last update).
  std::array<ChunkedArray<std::atomic<uint64_t>>, kNumKinds> engagement_;
  std::array<ChunkedArray<std::atomic<uint32_t>>, kNumKinds> followers_;
  std::array<ChunkedArray<std::atomic<int64_t>>, kNumKinds> first_seen_;  // ms
  std::array<std::array<std::atomic<uint32_t>, kRing>, kNumKinds> ring_{};
  std::array<std::atomic<uint64_t>, kNumKinds> ring_pos_{};
  DecayedCounters entity_counts_, viewer_counts_, creator_counts_;
  std::function<Ref(Ref)> creator_of_;
  std::atomic<uint64_t> events_applied_{0};
  std::atomic<int64_t> last_event_ts_{0};
  // Offsets applied: all below applied_through_, and the ranges of applied_ahead_
  // (begin -> end) beyond it; both guarded by apply_mu_ (through_ also read alone).
  std::atomic<uint64_t> applied_through_{0};
  std::map<uint64_t, uint64_t> applied_ahead_;
  mutable std::mutex apply_mu_;
};

}  // namespace affinity
