#include "state/live_state.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <unordered_map>

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

}  // namespace

bool ViewerState::Follows(Ref r) const { return std::binary_search(follows.begin(), follows.end(), r); }
bool ViewerState::Hid(Ref r) const { return std::binary_search(hidden.begin(), hidden.end(), r); }
bool ViewerState::Engaged(Ref r) const { return std::binary_search(engaged.begin(), engaged.end(), r); }

void DecayedCounters::Add(Ref r, double weight, int64_t ts_ms) {
  const uint32_t now_secs = uint32_t(std::max<int64_t>(0, ts_ms / 1000));
  for (int h = 0; h < kHalfLives; ++h) {
    auto& slot = slots_[h][int(r.kind())].Ensure(r.id());
    float v;
    uint32_t secs;
    Unpack(slot.load(std::memory_order_relaxed), &v, &secs);
    double decayed;
    if (now_secs >= secs) {
      decayed = v * std::exp2(-(double(now_secs - secs) * 1000.0) / double(kHalfLifeMs[h])) + weight;
      secs = now_secs;
    } else {  // out of order: decayed to the counter's time instead
      decayed = v + weight * std::exp2(-(double(secs - now_secs) * 1000.0) / double(kHalfLifeMs[h]));
    }
    slot.store(Pack(float(decayed), secs), std::memory_order_relaxed);
  }
}

std::array<double, DecayedCounters::kHalfLives> DecayedCounters::Get(Ref r, int64_t now_ms) const {
  std::array<double, kHalfLives> out{};
  if (!r.valid()) return out;
  for (int h = 0; h < kHalfLives; ++h) {
    auto* slot = slots_[h][int(r.kind())].Find(r.id());
    if (!slot) continue;
    float v;
    uint32_t secs;
    Unpack(slot->load(std::memory_order_relaxed), &v, &secs);
    const double age_ms = std::max(0.0, double(now_ms) - double(secs) * 1000.0);
    out[h] = v * std::exp2(-age_ms / double(kHalfLifeMs[h]));
  }
  return out;
}

int64_t DecayedCounters::LastMs(Ref r) const {
  if (!r.valid()) return 0;
  auto* slot = slots_[0][int(r.kind())].Find(r.id());
  if (!slot) return 0;
  float v;
  uint32_t secs;
  Unpack(slot->load(std::memory_order_relaxed), &v, &secs);
  return int64_t(secs) * 1000;
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
  if (!slot) return 0;
  float v;
  uint32_t secs;
  Unpack(slot->load(std::memory_order_relaxed), &v, &secs);
  if (v == 0) return 0;
  double age_ms = double(now_ms) - double(secs) * 1000.0;
  if (age_ms < 0) age_ms = 0;
  return v * std::exp2(-age_ms / double(half_life_ms_));
}

int64_t LiveState::FirstEngagedMs(Ref r) const {
  auto* slot = first_seen_[int(r.kind())].Find(r.id());
  return slot ? int64_t(slot->load(std::memory_order_relaxed)) * 1000 : 0;
}

int64_t LiveState::LastEngagedMs(Ref r) const {
  auto* slot = engagement_[int(r.kind())].Find(r.id());
  if (!slot) return 0;
  float v;
  uint32_t secs;
  Unpack(slot->load(std::memory_order_relaxed), &v, &secs);
  return int64_t(secs) * 1000;
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

void LiveState::ApplyToViewer(ViewerState& v, const Event& e) {
  v.events++;
  v.feedback.push_back(e.offset);
  if (v.feedback.size() > ViewerState::kMaxFeedback) v.feedback.erase(v.feedback.begin());
  v.last_ts = std::max(v.last_ts, e.ts);
  switch (e.action) {
    case Action::kFollow: InsertSorted(v.follows, e.entity); break;
    case Action::kUnfollow: EraseSorted(v.follows, e.entity); break;
    case Action::kHide: InsertSorted(v.hidden, e.entity); break;
    default: break;
  }
  if (IsPositive(e.action) && e.weight > 0) {
    InsertSorted(v.engaged, e.entity);
    v.recent.push_back({e.entity, e.action, e.weight, e.ts});
    if (v.recent.size() > ViewerState::kMaxRecent)
      v.recent.erase(v.recent.begin(), v.recent.begin() + (v.recent.size() - ViewerState::kMaxRecent));
  }
}

void LiveState::ApplyToEntity(const Event& e) {
  int k = int(e.entity.kind());
  if (IsPositive(e.action) && e.weight > 0) {
    auto& slot = engagement_[k].Ensure(e.entity.id());
    float v;
    uint32_t secs;
    Unpack(slot.load(std::memory_order_relaxed), &v, &secs);
    uint32_t now_secs = uint32_t(std::max<int64_t>(0, e.ts / 1000));
    auto& first = first_seen_[k].Ensure(e.entity.id());
    uint32_t was = first.load(std::memory_order_relaxed);
    if (was == 0 || now_secs < was) first.store(std::max<uint32_t>(now_secs, 1), std::memory_order_relaxed);
    double decayed = v;
    if (now_secs >= secs) {
      decayed = v * std::exp2(-(double(now_secs - secs) * 1000.0) / double(half_life_ms_));
      decayed += e.weight;
      secs = now_secs;
    } else {  // an out-of-order event: decay it to the counter's time instead
      decayed = v + e.weight * std::exp2(-(double(secs - now_secs) * 1000.0) / double(half_life_ms_));
    }
    slot.store(Pack(float(decayed), secs), std::memory_order_relaxed);
    entity_counts_.Add(e.entity, e.weight, e.ts);
    viewer_counts_.Add(e.viewer, e.weight, e.ts);
    const Ref creator = e.entity.kind() == Kind::kCreator ? e.entity : creator_of_ ? creator_of_(e.entity) : Ref();
    if (creator.valid()) creator_counts_.Add(creator, e.weight, e.ts);
    uint64_t pos = ring_pos_[k].load(std::memory_order_relaxed);
    ring_[k][pos % kRing].store(e.entity.bits, std::memory_order_relaxed);
    ring_pos_[k].store(pos + 1, std::memory_order_release);
  }
  events_applied_.fetch_add(1, std::memory_order_relaxed);
  if (e.ts > last_event_ts_.load(std::memory_order_relaxed))
    last_event_ts_.store(e.ts, std::memory_order_relaxed);
}

void LiveState::PublishViewer(Ref viewer, std::shared_ptr<const ViewerState> state) {
  viewers_.Ensure(viewer.id()).store(std::move(state), std::memory_order_release);
}

void LiveState::Apply(const std::vector<Event>& events) {
  std::lock_guard<std::mutex> lock(apply_mu_);
  // Group by viewer so that each viewer's state is copied once per batch.
  std::unordered_map<uint32_t, std::shared_ptr<ViewerState>> touched;
  for (const auto& e : events) {
    auto& state = touched[e.viewer.bits];
    if (!state) state = std::make_shared<ViewerState>(*Viewer(e.viewer));
    bool followed_before = state->Follows(e.entity);
    ApplyToViewer(*state, e);
    bool follows_now = state->Follows(e.entity);
    if (followed_before != follows_now) {
      auto& f = followers_[int(e.entity.kind())].Ensure(e.entity.id());
      f.store(f.load() + (follows_now ? 1 : uint32_t(-1)), std::memory_order_relaxed);
    }
    ApplyToEntity(e);
  }
  for (auto& [bits, state] : touched) PublishViewer(Ref::FromBits(bits), std::move(state));
}

absl::Status LiveState::Load(const Store& store) {
  std::lock_guard<std::mutex> lock(apply_mu_);
  // The event log is the source of truth: replaying it rebuilds follows, hides,
  // recent activity and counters exactly as live application built them.
  std::vector<ViewerState> states;
  auto s = store.ScanEvents([&](const Event& e) {
    if (states.size() <= e.viewer.id()) states.resize(e.viewer.id() + 1);
    ApplyToViewer(states[e.viewer.id()], e);
    ApplyToEntity(e);
    return true;
  });
  if (!s.ok()) return s;
  for (size_t i = 0; i < states.size(); ++i) {
    if (states[i].events == 0) continue;
    for (Ref target : states[i].follows) {
      auto& f = followers_[int(target.kind())].Ensure(target.id());
      f.store(f.load() + 1, std::memory_order_relaxed);
    }
    PublishViewer(Ref(Kind::kUser, DenseId(i)), std::make_shared<const ViewerState>(std::move(states[i])));
  }
  return absl::OkStatus();
}

}  // namespace affinity
