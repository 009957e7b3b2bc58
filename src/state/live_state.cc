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

// A ChunkedArray as a plain vector of `get(element)` (index = dense id; T{}
// where no chunk was allocated), and back through `set(element, value)`.
template <typename T, typename E, size_t B, typename Get>
std::vector<T> DumpArray(const ChunkedArray<E, B>& a, Get get) {
  constexpr size_t kChunk = ChunkedArray<E, B>::kChunk;
  std::vector<T> out(a.Extent(), T{});
  for (size_t c = 0; c < out.size(); c += kChunk) {
    const E* p = a.Find(c);
    if (!p) continue;
    for (size_t j = 0; j < kChunk; ++j) out[c + j] = get(p[j]);
  }
  return out;
}
template <typename T, typename E, size_t B, typename Set>
void RestoreArray(ChunkedArray<E, B>& a, const FrozenArray<T>& v, Set set) {
  constexpr size_t kChunk = ChunkedArray<E, B>::kChunk;
  for (size_t c = 0; c < v.size(); c += kChunk) {
    const size_t n = std::min(kChunk, v.size() - c);
    if (std::all_of(v.begin() + long(c), v.begin() + long(c + n), [](T x) { return x == T{}; })) continue;
    E* p = &a.Ensure(c);  // the chunk's first element: the chunk is contiguous
    for (size_t j = 0; j < n; ++j) set(p[j], v[c + j]);
  }
}
// The common case: an array of atomics, copied as their values.
template <typename T, size_t B>
std::vector<T> DumpArray(const ChunkedArray<std::atomic<T>, B>& a) {
  return DumpArray<T>(a, [](const std::atomic<T>& x) { return x.load(std::memory_order_relaxed); });
}
template <typename T, size_t B>
void RestoreArray(ChunkedArray<std::atomic<T>, B>& a, const FrozenArray<T>& v) {
  RestoreArray(a, v, [](std::atomic<T>& x, T value) { x.store(value, std::memory_order_relaxed); });
}

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

std::vector<uint64_t> DecayedCounters::Dump(int h, int kind) const {
  return DumpArray<uint64_t>(slots_[kind], [h](const Slot& s) { return s.packed[h].load(std::memory_order_relaxed); });
}

void DecayedCounters::Restore(int h, int kind, const FrozenArray<uint64_t>& packed) {
  RestoreArray(slots_[kind], packed, [h](Slot& s, uint64_t v) { s.packed[h].store(v, std::memory_order_relaxed); });
}

int64_t DecayedCounters::LastMs(Ref r) const {
  const Slot* slot = r.valid() ? slots_[int(r.kind())].Find(r.id()) : nullptr;
  return slot ? LastUpdateMs(slot->packed[0].load(std::memory_order_relaxed)) : 0;
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
  return slot ? int64_t(slot->load(std::memory_order_relaxed)) * 1000 : 0;
}

int64_t LiveState::LastEngagedMs(Ref r) const {
  auto* slot = engagement_[int(r.kind())].Find(r.id());
  return slot ? LastUpdateMs(slot->load(std::memory_order_relaxed)) : 0;
}

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
    case Action::kHide: InsertSorted(v.hidden, c.entity); break;
    default: break;
  }
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
    const uint32_t now_secs = uint32_t(std::max<int64_t>(0, c.ts / 1000));
    auto& first = first_seen_[k].Ensure(c.entity.id());
    uint32_t was = first.load(std::memory_order_relaxed);
    if (was == 0 || now_secs < was) first.store(std::max<uint32_t>(now_secs, 1), std::memory_order_relaxed);
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

absl::StatusOr<LiveLoadReport> LiveState::Load(const Store& store, const std::string& checkpoint_path,
                                               const std::array<uint32_t, kNumKinds>& known) {
  std::error_code ec;
  if (checkpoint_path.empty() || !std::filesystem::exists(checkpoint_path, ec))
    return Load(store, std::shared_ptr<CheckpointImage>(), known);
  return Load(store, ReadCheckpoint(checkpoint_path), known);
}

absl::StatusOr<LiveLoadReport> LiveState::Load(const Store& store,
                                               absl::StatusOr<std::shared_ptr<CheckpointImage>> checkpoint,
                                               const std::array<uint32_t, kNumKinds>& known) {
  std::lock_guard<std::mutex> lock(apply_mu_);
  const auto t0 = std::chrono::steady_clock::now();
  LiveLoadReport report;
  // Nothing is appended while the state loads: the log ends here.
  const uint64_t end = store.NextOffset();
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
  auto s = store.ScanEventsFrom(from, [&](const Event& e) {
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

// The checkpoint file (base/section_file.h): "meta" = {format, offset, events,
// last_event_ts, half_life_ms, created_ms}, "ahead" = flattened [begin, end)
// pairs, the viewers column by column, then each per-entity array by kind.
namespace {
// The file (base/section_file.h): its current version aligns each section's
// data, which a reader can then use in place; the first one did not.
constexpr SectionFormat kCheckpointFile{std::string_view("AFFLIVE2", 8), true, 64};
constexpr SectionFormat kCheckpointFileV1{std::string_view("AFFLIVE1", 8), true, 1};
constexpr int64_t kCheckpointFormat = 1;
constexpr int kViewerLists = 6;  // follows, hidden, recent, engaged, feedback, creators
const char* const kCounterGroups[3] = {"entity_counts", "viewer_counts", "creator_counts"};

std::string KindSection(const char* what, int k) { return std::string(what) + "." + std::string(KindName(Kind(k))); }
std::string CounterSection(int group, int h, int k) {
  return std::string(kCounterGroups[group]) + ".h" + std::to_string(h) + "." + std::string(KindName(Kind(k)));
}

// The viewers' states, column by column.
// Written from vectors; read as views of the mapped file (no copy).
template <template <typename> class Column>
struct ViewerColumnsOf {
  Column<uint32_t> ids, events, sizes, follows, hidden, engaged, recent_entity, creator_ref, creator_count;
  Column<int64_t> last_ts, recent_ts, creator_ts;
  Column<uint8_t> recent_action;
  Column<float> recent_weight;
  Column<uint64_t> feedback;

  template <typename F>  // f(name, column) for every column
  void ForEach(F&& f) {
    f("viewers.id", ids), f("viewers.events", events), f("viewers.last_ts", last_ts), f("viewers.sizes", sizes);
    f("viewers.follows", follows), f("viewers.hidden", hidden), f("viewers.engaged", engaged);
    f("viewers.recent.entity", recent_entity), f("viewers.recent.action", recent_action);
    f("viewers.recent.weight", recent_weight), f("viewers.recent.ts", recent_ts), f("viewers.feedback", feedback);
    f("viewers.creators.ref", creator_ref), f("viewers.creators.count", creator_count);
    f("viewers.creators.ts", creator_ts);
  }
};
template <typename T>
using Vector = std::vector<T>;
using ViewerColumns = ViewerColumnsOf<Vector>;
}  // namespace

absl::StatusOr<CheckpointInfo> LiveState::WriteCheckpoint(const std::string& path, int64_t now_ms) const {
  const auto t0 = std::chrono::steady_clock::now();
  CheckpointInfo info;
  // 1. A consistent copy, under the lock that orders Apply: viewer states are
  // immutable (their pointers are copied), counters are copied as values.
  std::vector<std::pair<uint32_t, std::shared_ptr<const ViewerState>>> viewers;
  std::array<std::vector<uint64_t>, kNumKinds> engagement;
  std::array<std::vector<uint32_t>, kNumKinds> followers, first_seen, ring;
  std::vector<uint64_t> ring_pos(kNumKinds);
  const DecayedCounters* groups[3] = {&entity_counts_, &viewer_counts_, &creator_counts_};
  std::array<std::array<std::array<std::vector<uint64_t>, kNumKinds>, DecayedCounters::kHalfLives>, 3> counts;
  {
    std::lock_guard<std::mutex> lock(apply_mu_);
    const auto locked_at = std::chrono::steady_clock::now();
    const size_t n = viewers_.Extent();
    viewers.reserve(n);
    for (size_t i = 0; i < n; ++i)
      if (const auto* slot = viewers_.Find(i))
        if (auto p = slot->load(std::memory_order_acquire)) viewers.emplace_back(uint32_t(i), std::move(p));
    for (int k = 0; k < kNumKinds; ++k) {
      engagement[k] = DumpArray(engagement_[k]);
      followers[k] = DumpArray(followers_[k]);
      first_seen[k] = DumpArray(first_seen_[k]);
      ring[k].resize(kRing);
      for (size_t j = 0; j < kRing; ++j) ring[k][j] = ring_[k][j].load(std::memory_order_relaxed);
      ring_pos[k] = ring_pos_[k].load(std::memory_order_relaxed);
      for (int g = 0; g < 3; ++g)
        for (int h = 0; h < DecayedCounters::kHalfLives; ++h) counts[g][h][k] = groups[g]->Dump(h, k);
    }
    info.offset = applied_through_.load(std::memory_order_relaxed);
    info.ahead.assign(applied_ahead_.begin(), applied_ahead_.end());
    info.events = events_applied_.load(std::memory_order_relaxed);
    info.last_event_ts = last_event_ts_.load(std::memory_order_relaxed);
    info.locked_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - locked_at).count();
  }
  info.created_ms = now_ms;
  // 2. Encoded column by column, off the lock.
  SectionWriter w(kCheckpointFile);
  w.Add("meta", std::vector<int64_t>{kCheckpointFormat, int64_t(info.offset), int64_t(info.events), info.last_event_ts,
                                     half_life_ms_, now_ms});
  std::vector<uint64_t> ahead;
  for (const auto& [b, e] : info.ahead) ahead.insert(ahead.end(), {b, e});
  w.Add("ahead", ahead);
  {
    ViewerColumns c;
    c.sizes.reserve(viewers.size() * kViewerLists);
    for (const auto& [id, v] : viewers) {
      c.ids.push_back(id);
      c.events.push_back(v->events);
      c.last_ts.push_back(v->last_ts);
      c.sizes.insert(c.sizes.end(), {uint32_t(v->follows.size()), uint32_t(v->hidden.size()), uint32_t(v->recent.size()),
                                     uint32_t(v->engaged.size()), uint32_t(v->feedback.size()),
                                     uint32_t(v->creators.size())});
      for (Ref r : v->follows) c.follows.push_back(r.bits);
      for (Ref r : v->hidden) c.hidden.push_back(r.bits);
      for (Ref r : v->engaged) c.engaged.push_back(r.bits);
      for (const auto& i : v->recent) {
        c.recent_entity.push_back(i.entity.bits);
        c.recent_action.push_back(uint8_t(i.action));
        c.recent_weight.push_back(i.weight);
        c.recent_ts.push_back(i.ts);
      }
      c.feedback.insert(c.feedback.end(), v->feedback.begin(), v->feedback.end());
      for (const auto& t : v->creators) {
        c.creator_ref.push_back(t.creator.bits);
        c.creator_count.push_back(t.count);
        c.creator_ts.push_back(t.last_ts);
      }
    }
    c.ForEach([&](const char* name, const auto& col) { w.Add(name, col); });
  }
  viewers.clear();
  for (int k = 0; k < kNumKinds; ++k) {
    w.Add(KindSection("engagement", k), engagement[k]);
    w.Add(KindSection("followers", k), followers[k]);
    w.Add(KindSection("first_seen", k), first_seen[k]);
    w.Add(KindSection("ring", k), ring[k]);
    for (int g = 0; g < 3; ++g)
      for (int h = 0; h < DecayedCounters::kHalfLives; ++h) w.Add(CounterSection(g, h, k), counts[g][h][k]);
  }
  w.Add("ring_pos", ring_pos);
  // 3. Written beside the old one and renamed over it (fsync first): a crash
  // leaves one checkpoint or the other, whole.
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  if (!WriteFileAtomic(path, w.data()))
    return absl::InternalError("checkpoint: cannot write " + path + ": " + std::strerror(errno));
  info.bytes = w.data().size();
  info.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return info;
}

// Everything a checkpoint holds, read and checked, ready to install.
struct LiveState::CheckpointImage {
  std::string path;
  CheckpointInfo info;
  uint64_t covered_end = 0;  // the newest log offset it covers, plus one
  // Per kind, one past the largest dense id any of it names (checked against
  // the registry at install).
  std::array<uint32_t, kNumKinds> needs{};
  FrozenArray<uint32_t> viewer_ids;
  std::vector<std::shared_ptr<ViewerState>> states;
  // Views of the mapped file, copied into the live state at install.
  std::array<FrozenArray<uint64_t>, kNumKinds> engagement;
  std::array<FrozenArray<uint32_t>, kNumKinds> followers, first_seen, ring;
  std::array<std::array<std::array<FrozenArray<uint64_t>, kNumKinds>, DecayedCounters::kHalfLives>, 3> counts;
  FrozenArray<uint64_t> ring_pos;
};

absl::StatusOr<std::shared_ptr<LiveState::CheckpointImage>> LiveState::ReadCheckpoint(const std::string& path) const {
  const auto t0 = std::chrono::steady_clock::now();
  SectionReader r;
  AFF_RETURN_IF_ERROR(r.Open(path, {kCheckpointFile, kCheckpointFileV1}));
  auto bad = [&](const std::string& what) { return absl::DataLossError(path + ": " + what); };
  std::vector<int64_t> meta;
  r.Get("meta", &meta);
  if (meta.size() < 6) return bad("no header");
  if (meta[0] != kCheckpointFormat)
    return absl::FailedPreconditionError(path + ": format " + std::to_string(meta[0]) + ", this build reads " +
                                         std::to_string(kCheckpointFormat));
  if (meta[4] != half_life_ms_)
    return absl::FailedPreconditionError(path + ": written with an engagement half-life of " + std::to_string(meta[4]) +
                                         " ms, this server uses " + std::to_string(half_life_ms_));
  auto image = std::make_shared<CheckpointImage>();
  image->path = path;
  CheckpointInfo& in = image->info;
  in.offset = uint64_t(meta[1]);
  in.events = uint64_t(meta[2]);
  in.last_event_ts = meta[3];
  in.created_ms = meta[5];
  std::vector<uint64_t> ahead;
  r.Get("ahead", &ahead);
  for (size_t i = 0; i + 1 < ahead.size(); i += 2) in.ahead.emplace_back(ahead[i], ahead[i + 1]);
  image->covered_end = in.offset;
  for (const auto& [b, e] : in.ahead) image->covered_end = std::max(image->covered_end, e);
  auto& needs = image->needs;
  auto fits = [&](uint32_t bits) {
    const Ref x = Ref::FromBits(bits);
    if (!x.valid() || int(x.kind()) >= kNumKinds) return false;
    needs[int(x.kind())] = std::max(needs[int(x.kind())], x.id() + 1);
    return true;
  };

  ViewerColumnsOf<FrozenArray> c;
  c.ForEach([&](const char* name, auto& col) { r.Get(name, &col); });
  const size_t nv = c.ids.size();
  if (c.events.size() != nv || c.last_ts.size() != nv || c.sizes.size() != nv * kViewerLists)
    return bad("the viewers' columns differ in length");
  if (c.recent_action.size() != c.recent_entity.size() || c.recent_weight.size() != c.recent_entity.size() ||
      c.recent_ts.size() != c.recent_entity.size() || c.creator_count.size() != c.creator_ref.size() ||
      c.creator_ts.size() != c.creator_ref.size())
    return bad("the viewers' lists differ in length");
  std::vector<std::shared_ptr<ViewerState>>& states = image->states;
  states.resize(nv);
  size_t pos[kViewerLists] = {0, 0, 0, 0, 0, 0};
  const size_t totals[kViewerLists] = {c.follows.size(), c.hidden.size(), c.recent_entity.size(),
                                       c.engaged.size(), c.feedback.size(), c.creator_ref.size()};
  for (size_t i = 0; i < nv; ++i) {
    if (c.ids[i] > kMaxDenseId) return bad("viewer " + std::to_string(c.ids[i]) + " is not a dense id");
    needs[0] = std::max(needs[0], uint32_t(c.ids[i]) + 1);
    const uint32_t* n = &c.sizes[i * kViewerLists];
    for (int l = 0; l < kViewerLists; ++l)
      if (n[l] > totals[l] - pos[l]) return bad("a viewer's list runs past its column");
    auto v = std::make_shared<ViewerState>();
    v->events = c.events[i];
    v->last_ts = c.last_ts[i];
    auto refs = [&](const FrozenArray<uint32_t>& col, int l, std::vector<Ref>* out) {
      out->reserve(n[l]);
      for (size_t j = pos[l]; j < pos[l] + n[l]; ++j) {
        if (!fits(col[j])) return false;
        out->push_back(Ref::FromBits(col[j]));
      }
      pos[l] += n[l];
      return true;
    };
    if (!refs(c.follows, 0, &v->follows) || !refs(c.hidden, 1, &v->hidden) || !refs(c.engaged, 3, &v->engaged))
      return bad("a viewer's list names something that is not an entity");
    v->recent.reserve(n[2]);
    for (size_t j = pos[2]; j < pos[2] + n[2]; ++j) {
      if (!fits(c.recent_entity[j]) || c.recent_action[j] >= kNumActions) return bad("a recent interaction is not valid");
      v->recent.push_back({Ref::FromBits(c.recent_entity[j]), Action(c.recent_action[j]), c.recent_weight[j],
                           c.recent_ts[j]});
    }
    pos[2] += n[2];
    v->feedback.assign(c.feedback.begin() + long(pos[4]), c.feedback.begin() + long(pos[4] + n[4]));
    pos[4] += n[4];
    v->creators.reserve(n[5]);
    for (size_t j = pos[5]; j < pos[5] + n[5]; ++j) {
      if (!fits(c.creator_ref[j])) return bad("a viewer's creator is not an entity");
      v->creators.push_back({Ref::FromBits(c.creator_ref[j]), c.creator_count[j], c.creator_ts[j]});
    }
    pos[5] += n[5];
    states[i] = std::move(v);
  }
  for (int l = 0; l < kViewerLists; ++l)
    if (pos[l] != totals[l]) return bad("the viewers' lists hold more than their sizes say");
  image->viewer_ids = c.ids;

  r.Get("ring_pos", &image->ring_pos);
  if (image->ring_pos.size() != size_t(kNumKinds)) return bad("no ring positions");
  for (int k = 0; k < kNumKinds; ++k) {
    r.Get(KindSection("engagement", k), &image->engagement[k]);
    r.Get(KindSection("followers", k), &image->followers[k]);
    r.Get(KindSection("first_seen", k), &image->first_seen[k]);
    r.Get(KindSection("ring", k), &image->ring[k]);
    if (image->ring[k].size() != kRing) return bad("a ring of recent entities has the wrong size");
    for (size_t j = 0; j < std::min<uint64_t>(image->ring_pos[k], kRing); ++j)  // its slots in use
      if (!fits(image->ring[k][j]) || int(Ref::FromBits(image->ring[k][j]).kind()) != k)
        return bad("the ring of recent " + std::string(KindName(Kind(k))) + "s names something else");
    for (int g = 0; g < 3; ++g)
      for (int h = 0; h < DecayedCounters::kHalfLives; ++h) r.Get(CounterSection(g, h, k), &image->counts[g][h][k]);
  }
  in.bytes = r.file_bytes();
  in.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return image;
}

absl::Status LiveState::InstallCheckpoint(CheckpointImage& image, const std::array<uint32_t, kNumKinds>& known,
                                          uint64_t log_end, CheckpointInfo* info) {
  const auto t0 = std::chrono::steady_clock::now();
  if (image.covered_end > log_end)
    return absl::FailedPreconditionError(image.path + ": it covers the log up to offset " +
                                         std::to_string(image.covered_end) + ", past the log's end (" +
                                         std::to_string(log_end) + ")");
  if (uint64_t(known[0]) + known[1] + known[2] > 0)
    for (int k = 0; k < kNumKinds; ++k)
      if (image.needs[k] > known[k])
        return absl::DataLossError(image.path + ": it names " + std::string(KindName(Kind(k))) + " " +
                                   std::to_string(image.needs[k] - 1) + ", which the registry does not hold (it has " +
                                   std::to_string(known[k]) + ")");
  for (size_t i = 0; i < image.states.size(); ++i)
    PublishViewer(Ref(Kind::kUser, DenseId(image.viewer_ids[i])), std::move(image.states[i]));
  DecayedCounters* groups[3] = {&entity_counts_, &viewer_counts_, &creator_counts_};
  for (int k = 0; k < kNumKinds; ++k) {
    RestoreArray(engagement_[k], image.engagement[k]);
    RestoreArray(followers_[k], image.followers[k]);
    RestoreArray(first_seen_[k], image.first_seen[k]);
    for (size_t j = 0; j < kRing; ++j) ring_[k][j].store(image.ring[k][j], std::memory_order_relaxed);
    ring_pos_[k].store(image.ring_pos[k], std::memory_order_relaxed);
    for (int g = 0; g < 3; ++g)
      for (int h = 0; h < DecayedCounters::kHalfLives; ++h) groups[g]->Restore(h, k, image.counts[g][h][k]);
  }
  events_applied_.store(image.info.events, std::memory_order_relaxed);
  last_event_ts_.store(image.info.last_event_ts, std::memory_order_relaxed);
  *info = image.info;
  info->seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return absl::OkStatus();
}

}  // namespace affinity
