#include "batch/log_stages.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/status.h"
#include "batch/batch_options.h"

namespace affinity::batch_stages {

// 1. The log up to the watermark, as raw (viewer, column) pairs.
absl::Status ScanLog(const EventLog& log, const Columns& c, const BatchOptions& o, std::vector<RawPair>* raw_out,
                     Snapshot* snap) {
  std::vector<RawPair>& raw = *raw_out;
  const auto& count = c.count;
  auto col_of = [&](Ref r) { return c.Col(r); };
  uint64_t watermark = 0;
  int64_t watermark_ts = 0;
  AFF_RETURN_IF_ERROR(log.ScanEvents([&](const Event& e) {
    watermark = e.offset + 1;
    if (e.viewer.kind() != Kind::kUser || e.viewer.id() >= count[0] || e.entity.id() >= count[int(e.entity.kind())])
      return true;  // registered after the scan began
    if ((o.window_from_ms > 0 && e.ts < o.window_from_ms) || (o.window_to_ms > 0 && e.ts > o.window_to_ms))
      return true;  // outside a backfill's window
    raw.push_back({e.viewer.id(), col_of(e.entity), e.ts, e.offset, e.weight, e.action});
    watermark_ts = std::max(watermark_ts, e.ts);
    return true;
  }));
  snap->watermark_offset = watermark;
  snap->watermark_ts = watermark_ts;
  return absl::OkStatus();
}

// 2. Decayed popularity per kind, relative to the newest event.
void Popularity(const std::vector<RawPair>& raw, const Columns& c, const BatchOptions& o, Snapshot* snap) {
  const auto& count = c.count;
  const auto& base = c.base;
  const double half_life_ms = o.popularity_half_life_hours * 3600e3;
  std::vector<float> pop(c.cols, 0.f);
  for (const auto& p : raw)
    if (IsPositive(p.action) && p.weight > 0)
      pop[p.col] += float(p.weight * std::exp2(-double(snap->watermark_ts - p.ts) / half_life_ms));
  for (int k = 0; k < kNumKinds; ++k) {
    KindSnapshot& ks = snap->kinds[k];
    std::vector<float> popularity(pop.begin() + base[k], pop.begin() + base[k] + count[k]);
    std::vector<uint32_t> order(count[k]);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return popularity[a] > popularity[b]; });
    std::vector<float> pct(count[k], 0.f);
    for (size_t r = 0; r < order.size(); ++r)
      if (popularity[order[r]] > 0) pct[order[r]] = 1.0f - float(r) / float(order.size());
    size_t n = 0;
    while (n < order.size() && n < size_t(o.popular_per_kind) && popularity[order[n]] > 0) ++n;
    ks.popular = std::vector<uint32_t>(order.begin(), order.begin() + n);
    ks.popularity = std::move(popularity);
    ks.popularity_pct = std::move(pct);
  }
}

// 3. One (viewer, entity) pair each: summed positive weight, the final follow
// state, dropped when hidden; graph statistics on the way.
std::vector<Pair> ReducePairs(std::vector<RawPair> raw, const Columns& c, Snapshot* snap) {
  const auto& count = c.count;
  const auto& base = c.base;
  const uint32_t cols = c.cols;
  std::sort(raw.begin(), raw.end(), [](const RawPair& a, const RawPair& b) {
    return a.viewer != b.viewer ? a.viewer < b.viewer : a.col != b.col ? a.col < b.col : a.offset < b.offset;
  });
  std::vector<Pair> pairs;
  std::vector<float> followers(cols, 0.f), following(count[0], 0.f), engagers(cols, 0.f);
  for (size_t i = 0; i < raw.size();) {
    size_t j = i;
    double w = 0, follow_w = 0;
    bool following_now = false, hidden = false;
    int64_t last = 0;
    for (; j < raw.size() && raw[j].viewer == raw[i].viewer && raw[j].col == raw[i].col; ++j) {
      const RawPair& p = raw[j];
      last = std::max(last, p.ts);
      if (p.action == Action::kFollow) { following_now = true; follow_w = std::max<double>(p.weight, 0); }
      else if (p.action == Action::kUnfollow) following_now = false;
      else if (Hides(p.action, p.weight)) hidden = true;
      else if (IsPositive(p.action) && p.weight > 0) w += p.weight;
    }
    if (following_now) {
      w += follow_w;
      followers[raw[i].col] += 1;
      following[raw[i].viewer] += 1;
    }
    if (!hidden && w > 0) {
      pairs.push_back({raw[i].viewer, raw[i].col, float(w), last});
      engagers[raw[i].col] += 1;
    }
    i = j;
  }
  for (int k = 0; k < kNumKinds; ++k) {
    KindSnapshot& ks = snap->kinds[k];
    ks.followers = std::vector<float>(followers.begin() + base[k], followers.begin() + base[k] + count[k]);
    ks.engagers = std::vector<float>(engagers.begin() + base[k], engagers.begin() + base[k] + count[k]);
    ks.following = std::vector<float>(count[k], 0.f);
  }
  snap->kinds[0].following = std::move(following);
  return pairs;
}

}  // namespace affinity::batch_stages
