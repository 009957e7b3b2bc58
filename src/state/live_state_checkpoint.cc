// LiveState's checkpoint: writing it (state/live.ckpt, docs/storage.md), reading
// and checking it, and installing it at start. Split from live_state.cc.
#include "state/live_state.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <unordered_map>

#include "base/section_file.h"
#include "base/status.h"
#include "base/strings.h"

namespace affinity {
namespace {

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

std::vector<uint64_t> DecayedCounters::Dump(int h, int kind) const {
  return DumpArray<uint64_t>(slots_[kind], [h](const Slot& s) { return s.packed[h].load(std::memory_order_relaxed); });
}

void DecayedCounters::Restore(int h, int kind, const FrozenArray<uint64_t>& packed) {
  RestoreArray(slots_[kind], packed, [h](Slot& s, uint64_t v) { s.packed[h].store(v, std::memory_order_relaxed); });
}

std::vector<int64_t> DecayedCounters::DumpLastMs(int kind) const {
  return DumpArray<int64_t>(slots_[kind], [](const Slot& s) { return s.last_ms.load(std::memory_order_relaxed); });
}

void DecayedCounters::RestoreLastMs(int kind, const FrozenArray<int64_t>& ms) {
  RestoreArray(slots_[kind], ms, [](Slot& s, int64_t v) { s.last_ms.store(v, std::memory_order_relaxed); });
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
// Since times were kept to the millisecond: each counter's newest update, and
// the first engagement as ms ("first_seen" holds the seconds builds before
// wrote; a checkpoint without these sections reads with second resolution).
std::string CounterLastMsSection(int group, int k) {
  return std::string(kCounterGroups[group]) + ".last_ms." + std::string(KindName(Kind(k)));
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
  std::array<std::vector<uint32_t>, kNumKinds> followers, ring;
  std::array<std::vector<int64_t>, kNumKinds> first_seen;
  std::array<std::array<std::vector<int64_t>, kNumKinds>, 3> last_ms;
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
      for (int g = 0; g < 3; ++g) {
        for (int h = 0; h < DecayedCounters::kHalfLives; ++h) counts[g][h][k] = groups[g]->Dump(h, k);
        last_ms[g][k] = groups[g]->DumpLastMs(k);
      }
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
    w.Add(KindSection("first_seen_ms", k), first_seen[k]);
    w.Add(KindSection("ring", k), ring[k]);
    for (int g = 0; g < 3; ++g) {
      for (int h = 0; h < DecayedCounters::kHalfLives; ++h) w.Add(CounterSection(g, h, k), counts[g][h][k]);
      w.Add(CounterLastMsSection(g, k), last_ms[g][k]);
    }
  }
  w.Add("ring_pos", ring_pos);
  // 3. Written beside the old one and renamed over it (fsync first): a crash
  // leaves one checkpoint or the other, whole.
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  if (!WriteFileAtomic(path, w.data()))
    return FileWriteError("checkpoint: cannot write " + path, errno);
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
  std::array<FrozenArray<uint32_t>, kNumKinds> followers, ring;
  std::array<FrozenArray<int64_t>, kNumKinds> first_seen;
  std::array<std::array<std::array<FrozenArray<uint64_t>, kNumKinds>, DecayedCounters::kHalfLives>, 3> counts;
  std::array<std::array<FrozenArray<int64_t>, kNumKinds>, 3> last_ms;
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
      // Every u8 is an action code: a built-in one or a configured one (the data
      // dir's table names it, store/action_codes.h).
      if (!fits(c.recent_entity[j])) return bad("a recent interaction is not valid");
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
    if (r.Has(KindSection("first_seen_ms", k))) {
      r.Get(KindSection("first_seen_ms", k), &image->first_seen[k]);
    } else {  // seconds, from a build before
      std::vector<uint32_t> secs;
      r.Get(KindSection("first_seen", k), &secs);
      std::vector<int64_t> ms(secs.size());
      for (size_t j = 0; j < secs.size(); ++j) ms[j] = int64_t(secs[j]) * 1000;
      image->first_seen[k] = std::move(ms);
    }
    r.Get(KindSection("ring", k), &image->ring[k]);
    if (image->ring[k].size() != kRing) return bad("a ring of recent entities has the wrong size");
    for (size_t j = 0; j < std::min<uint64_t>(image->ring_pos[k], kRing); ++j)  // its slots in use
      if (!fits(image->ring[k][j]) || int(Ref::FromBits(image->ring[k][j]).kind()) != k)
        return bad("the ring of recent " + std::string(KindName(Kind(k))) + "s names something else");
    for (int g = 0; g < 3; ++g) {
      for (int h = 0; h < DecayedCounters::kHalfLives; ++h) r.Get(CounterSection(g, h, k), &image->counts[g][h][k]);
      r.Get(CounterLastMsSection(g, k), &image->last_ms[g][k]);  // absent before: zeros, read as the packed second
    }
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
    for (int g = 0; g < 3; ++g) {
      for (int h = 0; h < DecayedCounters::kHalfLives; ++h) groups[g]->Restore(h, k, image.counts[g][h][k]);
      groups[g]->RestoreLastMs(k, image.last_ms[g][k]);
    }
  }
  events_applied_.store(image.info.events, std::memory_order_relaxed);
  last_event_ts_.store(image.info.last_event_ts, std::memory_order_relaxed);
  *info = image.info;
  info->seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return absl::OkStatus();
}

}  // namespace affinity
