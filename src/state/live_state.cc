#include "state/live_state.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <unordered_map>

#include "base/block_pipe.h"
#include "base/section_file.h"
#include "base/status.h"
#include "base/strings.h"

namespace affinity {
namespace {

uint64_t Pack(float value, uint32_t secs) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  return (uint64_t(bits) << 32) | secs;
}
void Unpack(uint64_t p, float* value, uint32_t* secs) {
  uint32_t bits = uint32_t(p >> 32);
  std::memcpy(value, &bits, 4);
  *secs = uint32_t(p);
}

void InsertSorted(std::vector<Ref>& v, Ref r) {
  auto it = std::lower_bound(v.begin(), v.end(), r);
  if (it == v.end() || !(*it == r)) v.insert(it, r);
}
bool EraseSorted(std::vector<Ref>& v, Ref r) {
  auto it = std::lower_bound(v.begin(), v.end(), r);
  if (it == v.end() || !(*it == r)) return false;
  v.erase(it);
  return true;
}

// A decayed count packed as (float count, uint32 seconds of its last update):
// `weight` added at ts_ms, decayed with half_life_ms. An event older than the
// count's last update is decayed to that time instead.
uint64_t AddDecayed(uint64_t packed, double weight, int64_t ts_ms, double half_life_ms) {
  const uint32_t now_secs = uint32_t(std::max<int64_t>(0, ts_ms / 1000));
  float v;
  uint32_t secs;
  Unpack(packed, &v, &secs);
  if (now_secs >= secs)
    return Pack(float(v * std::exp2(-(double(now_secs - secs) * 1000.0) / half_life_ms) + weight), now_secs);
  return Pack(float(v + weight * std::exp2(-(double(secs - now_secs) * 1000.0) / half_life_ms)), secs);
}
// Its value as of now_ms.
double ReadDecayed(uint64_t packed, int64_t now_ms, double half_life_ms) {
  float v;
  uint32_t secs;
  Unpack(packed, &v, &secs);
  if (v == 0) return 0;
  const double age_ms = std::max(0.0, double(now_ms) - double(secs) * 1000.0);
  return v * std::exp2(-age_ms / half_life_ms);
}
int64_t LastUpdateMs(uint64_t packed) { return int64_t(uint32_t(packed)) * 1000; }

}  // namespace

bool ViewerState::Follows(Ref r) const { return std::binary_search(follows.begin(), follows.end(), r); }
bool ViewerState::Hid(Ref r) const { return std::binary_search(hidden.begin(), hidden.end(), r); }
bool ViewerState::Engaged(Ref r) const { return std::binary_search(engaged.begin(), engaged.end(), r); }

const CreatorTouch* ViewerState::Creator(Ref creator) const {
  auto it = std::lower_bound(creators.begin(), creators.end(), creator,
                             [](const CreatorTouch& t, Ref c) { return t.creator < c; });
  return it != creators.end() && it->creator == creator ? &*it : nullptr;
}

int64_t ViewerState::LastEngagedMs(Ref r) const {
  int64_t last = 0;
  for (const auto& i : recent)
    if (i.entity == r) last = std::max(last, i.ts);
  return last;
}

void DecayedCounters::Add(Ref r, double weight, int64_t ts_ms) {
  Slot& slot = slots_[int(r.kind())].Ensure(r.id());
  for (int h = 0; h < kHalfLives; ++h)
    slot.packed[h].store(AddDecayed(slot.packed[h].load(std::memory_order_relaxed), weight, ts_ms, double(kHalfLifeMs[h])),
                         std::memory_order_relaxed);
  if (ts_ms > slot.last_ms.load(std::memory_order_relaxed)) slot.last_ms.store(ts_ms, std::memory_order_relaxed);
}

void DecayedCounters::Prefetch(Ref r) const {
  if (const Slot* slot = r.valid() ? slots_[int(r.kind())].Find(r.id()) : nullptr) __builtin_prefetch(slot, 1);
}

std::array<double, DecayedCounters::kHalfLives> DecayedCounters::Get(Ref r, int64_t now_ms) const {
  std::array<double, kHalfLives> out{};
  const Slot* slot = r.valid() ? slots_[int(r.kind())].Find(r.id()) : nullptr;
  if (!slot) return out;
  for (int h = 0; h < kHalfLives; ++h)
    out[h] = ReadDecayed(slot->packed[h].load(std::memory_order_relaxed), now_ms, double(kHalfLifeMs[h]));
  return out;
}

int64_t DecayedCounters::LastMs(Ref r) const {
  const Slot* slot = r.valid() ? slots_[int(r.kind())].Find(r.id()) : nullptr;
  if (!slot) return 0;
  // A count restored from a checkpoint of a build that kept seconds only: its second.
  const int64_t ms = slot->last_ms.load(std::memory_order_relaxed);
  return ms > 0 ? ms : LastUpdateMs(slot->packed[0].load(std::memory_order_relaxed));
}

void DecayedCounters::Clear(Ref r) {
  Slot* slot = r.valid() ? slots_[int(r.kind())].Find(r.id()) : nullptr;
  if (!slot) return;
  for (auto& packed : slot->packed) packed.store(0, std::memory_order_relaxed);
  slot->last_ms.store(0, std::memory_order_relaxed);
}

LiveState::LiveState(const ActionWeights& weights, int64_t half_life_ms)
    : weights_(weights), half_life_ms_(half_life_ms) {}

std::shared_ptr<const ViewerState> LiveState::Viewer(Ref viewer) const {
  static const auto kEmpty = std::make_shared<const ViewerState>();
  if (!viewer.valid()) return kEmpty;
  auto* slot = viewers_.Find(viewer.id());
  if (!slot) return kEmpty;
  auto p = slot->load(std::memory_order_acquire);
  return p ? p : kEmpty;
}

double LiveState::Engagement(Ref r, int64_t now_ms) const {
  auto* slot = engagement_[int(r.kind())].Find(r.id());
  return slot ? ReadDecayed(slot->load(std::memory_order_relaxed), now_ms, double(half_life_ms_)) : 0;
}

int64_t LiveState::FirstEngagedMs(Ref r) const {
  auto* slot = first_seen_[int(r.kind())].Find(r.id());
  return slot ? slot->load(std::memory_order_relaxed) : 0;
}

// The entity counts take the same events as the engagement count.
int64_t LiveState::LastEngagedMs(Ref r) const { return entity_counts_.LastMs(r); }

uint32_t LiveState::Followers(Ref r) const {
  auto* slot = followers_[int(r.kind())].Find(r.id());
  return slot ? slot->load(std::memory_order_relaxed) : 0;
}

std::vector<Ref> LiveState::Recent(Kind k, size_t n) const {
  std::vector<Ref> out;
  uint64_t pos = ring_pos_[int(k)].load(std::memory_order_acquire);
  uint64_t seen = 0;
  while (out.size() < n && seen < std::min<uint64_t>(pos, kRing)) {
    ++seen;
    Ref r = Ref::FromBits(ring_[int(k)][(pos - seen) % kRing].load(std::memory_order_relaxed));
    if (std::find(out.begin(), out.end(), r) == out.end()) out.push_back(r);
  }
  return out;
}

Ref LiveState::CreatorOf(Ref entity) const {
  if (entity.kind() == Kind::kCreator) return entity;
  return creator_of_ ? creator_of_(entity) : Ref();
}

LiveState::Change LiveState::ToChange(const Event& e) const {
  return {e.offset, e.ts, e.viewer, e.entity, IsPositive(e.action) && e.weight > 0 ? CreatorOf(e.entity) : Ref(),
          e.action, e.weight};
}

void LiveState::ApplyToViewer(ViewerState& v, Change& c) {
  const Ref creator = c.creator;
  const bool followed_before = v.Follows(c.entity);
  v.events++;
  v.feedback.push_back(c.offset);
  if (v.feedback.size() > ViewerState::kMaxFeedback) v.feedback.erase(v.feedback.begin());
  v.last_ts = std::max(v.last_ts, c.ts);
  switch (c.action) {
    case Action::kFollow: InsertSorted(v.follows, c.entity); break;
    case Action::kUnfollow: EraseSorted(v.follows, c.entity); break;
    default: break;
  }
  if (Hides(c.action, c.weight)) InsertSorted(v.hidden, c.entity);
  if (IsPositive(c.action) && c.weight > 0) {
    InsertSorted(v.engaged, c.entity);
    v.recent.push_back({c.entity, c.action, c.weight, c.ts});
    if (v.recent.size() > ViewerState::kMaxRecent)
      v.recent.erase(v.recent.begin(), v.recent.begin() + (v.recent.size() - ViewerState::kMaxRecent));
    if (creator.valid()) {
      auto it = std::lower_bound(v.creators.begin(), v.creators.end(), creator,
                                 [](const CreatorTouch& t, Ref x) { return t.creator < x; });
      if (it != v.creators.end() && it->creator == creator) {
        it->count++;
        it->last_ts = std::max(it->last_ts, c.ts);
      } else {
        v.creators.insert(it, CreatorTouch{creator, 1, c.ts});
        if (v.creators.size() > ViewerState::kMaxCreators)  // forget the least recently engaged
          v.creators.erase(std::min_element(v.creators.begin(), v.creators.end(),
                                            [](const CreatorTouch& a, const CreatorTouch& b) { return a.last_ts < b.last_ts; }));
      }
    }
  }
  const bool follows_now = v.Follows(c.entity);
  if (followed_before != follows_now) c.followers_delta = follows_now ? 1 : -1;
}

void LiveState::ApplyToEntity(const Change& c) {
  int k = int(c.entity.kind());
  if (c.followers_delta != 0) {
    auto& f = followers_[k].Ensure(c.entity.id());
    f.store(f.load(std::memory_order_relaxed) + uint32_t(int32_t(c.followers_delta)), std::memory_order_relaxed);
  }
  if (IsPositive(c.action) && c.weight > 0) {
    auto& slot = engagement_[k].Ensure(c.entity.id());
    slot.store(AddDecayed(slot.load(std::memory_order_relaxed), c.weight, c.ts, double(half_life_ms_)),
               std::memory_order_relaxed);
    auto& first = first_seen_[k].Ensure(c.entity.id());
    const int64_t was = first.load(std::memory_order_relaxed);
    if (was == 0 || c.ts < was) first.store(std::max<int64_t>(c.ts, 1), std::memory_order_relaxed);
    entity_counts_.Add(c.entity, c.weight, c.ts);
    viewer_counts_.Add(c.viewer, c.weight, c.ts);
    if (c.creator.valid()) creator_counts_.Add(c.creator, c.weight, c.ts);
    uint64_t pos = ring_pos_[k].load(std::memory_order_relaxed);
    ring_[k][pos % kRing].store(c.entity.bits, std::memory_order_relaxed);
    ring_pos_[k].store(pos + 1, std::memory_order_release);
  }
  events_applied_.fetch_add(1, std::memory_order_relaxed);
  if (c.ts > last_event_ts_.load(std::memory_order_relaxed))
    last_event_ts_.store(c.ts, std::memory_order_relaxed);
}

void LiveState::PrefetchEntity(const Change& c) const {
  const int k = int(c.entity.kind());
  if (const auto* p = engagement_[k].Find(c.entity.id())) __builtin_prefetch(p, 1);
  if (const auto* p = first_seen_[k].Find(c.entity.id())) __builtin_prefetch(p, 1);
  entity_counts_.Prefetch(c.entity);
  viewer_counts_.Prefetch(c.viewer);
  creator_counts_.Prefetch(c.creator);
}

void LiveState::PublishViewer(Ref viewer, std::shared_ptr<const ViewerState> state) {
  viewers_.Ensure(viewer.id()).store(std::move(state), std::memory_order_release);
}

void LiveState::NoteApplied(uint64_t offset) {
  uint64_t through = applied_through_.load(std::memory_order_relaxed);
  if (offset == through) {
    ++through;
    while (!applied_ahead_.empty() && applied_ahead_.begin()->first <= through) {
      through = std::max(through, applied_ahead_.begin()->second);
      applied_ahead_.erase(applied_ahead_.begin());
    }
    applied_through_.store(through, std::memory_order_relaxed);
  } else if (offset > through) {  // a batch applied before an earlier one
    auto it = applied_ahead_.upper_bound(offset);
    if (it != applied_ahead_.begin() && std::prev(it)->second >= offset)
      std::prev(it)->second = std::max(std::prev(it)->second, offset + 1);
    else
      applied_ahead_.emplace(offset, offset + 1);
  }
}

void LiveState::Apply(const std::vector<Event>& events) {
  std::lock_guard<std::mutex> lock(apply_mu_);
  // Group by viewer so that each viewer's state is copied once per batch.
  std::unordered_map<uint32_t, std::shared_ptr<ViewerState>> touched;
  for (const auto& e : events) {
    auto& state = touched[e.viewer.bits];
    if (!state) state = std::make_shared<ViewerState>(*Viewer(e.viewer));
    ApplyOne(*state, e);
    NoteApplied(e.offset);
  }
  for (auto& [bits, state] : touched) PublishViewer(Ref::FromBits(bits), std::move(state));
}

absl::StatusOr<LiveLoadReport> LiveState::Load(const EventLog& log, const std::string& checkpoint_path,
                                               const std::array<uint32_t, kNumKinds>& known) {
  std::error_code ec;
  if (checkpoint_path.empty() || !std::filesystem::exists(checkpoint_path, ec))
    return Load(log, std::shared_ptr<CheckpointImage>(), known);
  return Load(log, ReadCheckpoint(checkpoint_path), known);
}

absl::StatusOr<LiveLoadReport> LiveState::Load(const EventLog& log,
                                               absl::StatusOr<std::shared_ptr<CheckpointImage>> checkpoint,
                                               const std::array<uint32_t, kNumKinds>& known) {
  std::lock_guard<std::mutex> lock(apply_mu_);
  const auto t0 = std::chrono::steady_clock::now();
  LiveLoadReport report;
  // Nothing is appended while the state loads: the log ends here.
  const uint64_t end = log.NextOffset();
  if (!checkpoint.ok()) {
    report.checkpoint_refused = std::string(checkpoint.status().message());
  } else if (*checkpoint) {
    absl::Status st = InstallCheckpoint(**checkpoint, known, end, &report.checkpoint);
    if (st.ok())
      report.from_checkpoint = true;
    else
      report.checkpoint_refused = std::string(st.message());
    checkpoint->reset();  // what it held is installed now, or dropped
  }
  // The log (its tail after the checkpoint, or all of it) is the source of
  // truth: applying it rebuilds follows, hides, recent activity and counters
  // exactly as live application built them. It is replayed on two threads.
  // This one scans the log and applies the viewer's side of the events of
  // even viewers; the pipe's thread applies the viewer's side of the others',
  // then every event's entity side. Each viewer's events are applied by one
  // thread in log order, and every entity's side by one thread in log order,
  // so the state ends exactly as a one-thread replay leaves it (the rings and
  // the float sums in the same order).
  const uint64_t from = report.from_checkpoint ? report.checkpoint.offset : 0;
  const auto& ahead = report.checkpoint.ahead;
  std::vector<std::shared_ptr<ViewerState>> touched[2];  // by viewer id parity, then id / 2
  auto state_of = [&](Ref viewer) -> ViewerState& {
    auto& shard = touched[viewer.id() & 1];
    const size_t i = viewer.id() >> 1;
    if (shard.size() <= i) shard.resize(i + 1);
    if (!shard[i]) shard[i] = std::make_shared<ViewerState>(*Viewer(viewer));
    return *shard[i];
  };
  struct Replayed {
    Change change;
    ViewerState* state;  // set by the viewer's side
  };
  // Applies the viewer's side of the changes in block whose viewer id has this
  // parity. The replay waits on memory rather than arithmetic (the states of
  // all viewers do not fit in cache), so all the block's states are looked up
  // first and each one's lists are fetched a few changes ahead.
  constexpr size_t kAhead = 8;  // how many changes ahead memory is fetched
  auto apply_viewers = [&](std::vector<Replayed>& block, uint32_t parity) {
    for (auto& r : block)
      if ((r.change.viewer.id() & 1) == parity) {
        r.state = &state_of(r.change.viewer);
        __builtin_prefetch(r.state);
      }
    for (size_t i = 0; i < block.size(); ++i) {
      if (i + kAhead < block.size())
        if (const ViewerState* v = block[i + kAhead].state; v && (block[i + kAhead].change.viewer.id() & 1) == parity) {
          __builtin_prefetch(v->feedback.data() + v->feedback.size());
          __builtin_prefetch(v->engaged.data() + v->engaged.size() / 2);
          __builtin_prefetch(v->recent.data() + v->recent.size());
          __builtin_prefetch(v->creators.data());
          __builtin_prefetch(v->follows.data());
        }
      auto& r = block[i];
      if ((r.change.viewer.id() & 1) == parity) ApplyToViewer(*r.state, r.change);
    }
  };
  BlockPipe<Replayed> odd_viewers_and_entities(
      [&](std::vector<Replayed>& block) {  // the pipe's thread
        apply_viewers(block, 1);
        for (size_t i = 0; i < block.size(); ++i) {
          if (i + kAhead < block.size()) PrefetchEntity(block[i + kAhead].change);
          ApplyToEntity(block[i].change);
        }
      },
      /*block_size=*/4096, /*in_flight=*/4,
      [&](std::vector<Replayed>& block) { apply_viewers(block, 0); });  // this thread, before it hands a block over
  auto s = log.ScanEventsFrom(from, [&](const Event& e) {
    if (e.offset >= end) return false;
    for (const auto& [b, en] : ahead)
      if (e.offset >= b && e.offset < en) return true;  // in the checkpoint already
    odd_viewers_and_entities.Push({ToChange(e), nullptr});
    ++report.replayed;
    return true;
  });
  odd_viewers_and_entities.Close();
  if (!s.ok()) return s;
  for (int p = 0; p < 2; ++p)
    for (size_t i = 0; i < touched[p].size(); ++i)
      if (touched[p][i]) PublishViewer(Ref(Kind::kUser, DenseId(2 * i + p)), std::move(touched[p][i]));
  applied_ahead_.clear();
  applied_through_.store(std::max(end, from), std::memory_order_relaxed);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace affinity

namespace affinity {

void LiveState::Forget(Ref person, const std::vector<Event>& removed) {
  std::lock_guard<std::mutex> lock(apply_mu_);
  const int pk = int(person.kind());
  const auto own = Viewer(person);
  // What they followed loses a follower; what followed them is cleared below.
  for (Ref followed : own->follows)
    if (auto* f = followers_[int(followed.kind())].Find(followed.id()); f && f->load(std::memory_order_relaxed) > 0)
      f->store(f->load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  // Their engagement with others, out of those others' counts.
  std::unordered_map<uint32_t, std::vector<const Event*>> others;  // viewer -> their removed events
  for (const Event& e : removed) {
    if (!(e.viewer == person)) {
      others[e.viewer.bits].push_back(&e);
      if (IsPositive(e.action) && e.weight > 0) viewer_counts_.Add(e.viewer, -e.weight, e.ts);
      continue;
    }
    if (e.entity == person || !IsPositive(e.action) || e.weight <= 0) continue;
    const int k = int(e.entity.kind());
    if (auto* slot = engagement_[k].Find(e.entity.id()))
      slot->store(AddDecayed(slot->load(std::memory_order_relaxed), -e.weight, e.ts, double(half_life_ms_)),
                  std::memory_order_relaxed);
    entity_counts_.Add(e.entity, -e.weight, e.ts);
    if (const Ref creator = CreatorOf(e.entity); creator.valid()) creator_counts_.Add(creator, -e.weight, e.ts);
  }
  // Every counter of their own slot.
  if (auto* slot = engagement_[pk].Find(person.id())) slot->store(0, std::memory_order_relaxed);
  if (auto* slot = followers_[pk].Find(person.id())) slot->store(0, std::memory_order_relaxed);
  if (auto* slot = first_seen_[pk].Find(person.id())) slot->store(0, std::memory_order_relaxed);
  entity_counts_.Clear(person);
  viewer_counts_.Clear(person);
  creator_counts_.Clear(person);
  // The recency ring of their kind without them: the other entries keep their
  // order, the oldest of them filling the places theirs held.
  auto& ring = ring_[pk];
  const uint64_t pos = ring_pos_[pk].load(std::memory_order_relaxed), used = std::min<uint64_t>(pos, kRing);
  std::vector<uint32_t> kept;
  for (uint64_t i = pos - used; i < pos; ++i)
    if (const uint32_t b = ring[i % kRing].load(std::memory_order_relaxed); b != person.bits) kept.push_back(b);
  if (kept.empty()) ring_pos_[pk].store(0, std::memory_order_release);
  for (uint64_t i = 0, pad = used - kept.size(); i < used && !kept.empty(); ++i)
    ring[(pos - used + i) % kRing].store(kept[i < pad ? 0 : i - pad], std::memory_order_relaxed);
  if (person.kind() == Kind::kUser && viewers_.Find(person.id()))
    PublishViewer(person, std::make_shared<const ViewerState>());
  // The viewers who engaged with or followed them: every trace of them.
  for (const auto& other : others) {
    const Ref viewer = Ref::FromBits(other.first);
    const auto& events = other.second;  // named: clang 14 cannot capture a structured binding
    auto state = std::make_shared<ViewerState>(*Viewer(viewer));
    EraseSorted(state->follows, person);
    EraseSorted(state->hidden, person);
    EraseSorted(state->engaged, person);
    std::erase_if(state->recent, [&](const Interaction& i) { return i.entity == person; });
    std::erase_if(state->creators, [&](const CreatorTouch& t) { return t.creator == person; });
    std::erase_if(state->feedback, [&](uint64_t offset) {
      return std::any_of(events.begin(), events.end(), [&](const Event* e) { return e->offset == offset; });
    });
    state->events -= uint32_t(std::min<size_t>(state->events, events.size()));
    PublishViewer(viewer, std::move(state));
  }
}

}  // namespace affinity
