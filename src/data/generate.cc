#include "data/generate.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <vector>

namespace affinity {
namespace {

// Samples indices proportionally to weights (cumulative array + binary search).
class Sampler {
 public:
  void Reset() { cum_.clear(); }
  void Add(double w) { cum_.push_back((cum_.empty() ? 0 : cum_.back()) + std::max(w, 0.0)); }
  size_t size() const { return cum_.size(); }
  // Samples from the prefix [0, n).
  template <typename Rng>
  size_t Sample(Rng& rng, size_t n) const {
    n = std::min(n, cum_.size());
    if (n == 0) return 0;
    double total = cum_[n - 1];
    double x = std::uniform_real_distribution<double>(0, total)(rng);
    return std::min<size_t>(std::upper_bound(cum_.begin(), cum_.begin() + n, x) - cum_.begin(), n - 1);
  }
  template <typename Rng>
  size_t Sample(Rng& rng) const { return Sample(rng, cum_.size()); }

 private:
  std::vector<double> cum_;
};

class Writer {
 public:
  explicit Writer(FILE* f) : f_(f) { buf_.reserve(1 << 20); }
  ~Writer() { Flush(); }
  fmt::memory_buffer& buf() { return buf_; }
  void MaybeFlush() { if (buf_.size() > (1 << 20)) Flush(); }
  void Flush() {
    if (buf_.size()) std::fwrite(buf_.data(), 1, buf_.size(), f_);
    buf_.clear();
  }

 private:
  FILE* f_;
  fmt::memory_buffer buf_;
};

constexpr const char* kRegions[] = {"na", "eu", "latam", "apac", "africa"};

}  // namespace

absl::Status GenerateWorld(const GenerateOptions& options, const std::string& out_dir, GenerateStats* stats,
                           const std::function<void(double)>& progress) {
  GenerateOptions o = options;
  if (o.end_ms == 0) {
    const int64_t hour = 3'600'000;
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
    o.end_ms = now / hour * hour;
  }
  if (o.end_ms < int64_t(o.days) * 86'400'000LL + 631'152'000'000LL)
    return absl::InvalidArgumentError("generate: --end-ts must leave the whole history after 1990 (unix ms)");
  if (o.users < 2 || o.creators < 1 || o.items < 1 || o.events < 0 || o.topics < 2)
    return absl::InvalidArgumentError("generate: need at least 2 users, 1 creator, 1 item and 2 topics");
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) return absl::InternalError("cannot create " + out_dir + ": " + ec.message());
  std::mt19937_64 rng(o.seed);
  std::uniform_real_distribution<double> U(0, 1);
  const int T = o.topics;
  const int64_t day = 86400000LL;
  const int64_t start = o.end_ms - int64_t(o.days) * day;
  auto pareto = [&](double alpha) { return std::pow(1.0 - U(rng), -1.0 / alpha); };

  // Communities, each with three favourite topics.
  const int K = int(std::max<int64_t>(4, o.users / 2000));
  std::vector<std::array<int, 3>> community_topics(K);
  for (auto& ct : community_topics)
    for (auto& t : ct) t = int(rng() % T);

  // Users: community, personal topics, activity and fame (power law).
  std::vector<int> user_comm(o.users);
  std::vector<std::array<int, 3>> user_topics(o.users);
  std::vector<double> activity(o.users), fame(o.users);
  std::vector<std::vector<int64_t>> comm_members(K);
  for (int64_t u = 0; u < o.users; ++u) {
    int c = int(rng() % K);
    user_comm[u] = c;
    comm_members[c].push_back(u);
    user_topics[u] = {community_topics[c][rng() % 3], community_topics[c][rng() % 3], int(rng() % T)};
    activity[u] = pareto(1.6);
    fame[u] = pareto(1.3);
  }
  // Creators: topic, popularity (power law), start day (the "new" cohort joined late).
  std::vector<int> creator_topic(o.creators);
  std::vector<double> creator_pop(o.creators);
  std::vector<int64_t> creator_start(o.creators);
  std::vector<Sampler> creators_by_topic(T);
  std::vector<std::vector<int64_t>> topic_creators(T);
  for (int64_t c = 0; c < o.creators; ++c) {
    creator_topic[c] = int(rng() % T);
    creator_pop[c] = pareto(1.2);
    creator_start[c] = U(rng) < 0.15 ? start + int64_t(U(rng) * 0.7 * o.days) * day : start - 30 * day;
    topic_creators[creator_topic[c]].push_back(c);
    creators_by_topic[creator_topic[c]].Add(creator_pop[c]);
  }
  // Items: by a creator (prolific creators publish more), mostly on its topic.
  Sampler creator_sampler;
  for (int64_t c = 0; c < o.creators; ++c) creator_sampler.Add(std::sqrt(creator_pop[c]));
  struct Item { int64_t creator; int topic; int64_t published; double quality; };
  std::vector<Item> items(o.items);
  for (auto& it : items) {
    it.creator = int64_t(creator_sampler.Sample(rng));
    it.topic = U(rng) < 0.8 ? creator_topic[it.creator] : int(rng() % T);
    int64_t from = std::max(start - 10 * day, creator_start[it.creator]);
    it.published = from + int64_t(U(rng) * double(o.end_ms - from));
    it.quality = std::exp(0.6 * std::normal_distribution<double>(0, 1)(rng)) *
                 std::pow(creator_pop[it.creator], 0.3);
  }
  // Per topic: items sorted by publish time, with cumulative quality.
  std::vector<std::vector<int64_t>> topic_items(T);
  for (int64_t i = 0; i < o.items; ++i) topic_items[items[i].topic].push_back(i);
  std::vector<Sampler> topic_sampler(T);
  std::vector<std::vector<int64_t>> topic_pub(T);
  for (int t = 0; t < T; ++t) {
    auto& v = topic_items[t];
    std::sort(v.begin(), v.end(), [&](int64_t a, int64_t b) { return items[a].published < items[b].published; });
    for (int64_t i : v) {
      topic_sampler[t].Add(items[i].quality);
      topic_pub[t].push_back(items[i].published);
    }
  }
  // Per creator: items by publish time (for "new from creators you follow").
  std::vector<std::vector<int64_t>> creator_items(o.creators);
  for (int t = 0; t < T; ++t)
    for (int64_t i : topic_items[t]) creator_items[items[i].creator].push_back(i);
  for (auto& v : creator_items)
    std::sort(v.begin(), v.end(), [&](int64_t a, int64_t b) { return items[a].published < items[b].published; });

  // entities.tsv
  {
    FILE* f = std::fopen((out_dir + "/entities.tsv").c_str(), "wb");
    if (!f) return absl::InternalError("cannot write " + out_dir + "/entities.tsv");
    Writer w(f);
    fmt::format_to(std::back_inserter(w.buf()), "id\tkind\tcreator_id\tcohort\n");
    for (int64_t u = 0; u < o.users; ++u) {
      fmt::format_to(std::back_inserter(w.buf()), "u{}\tuser\t\t{}\n", u, kRegions[user_comm[u] % 5]);
      w.MaybeFlush();
    }
    for (int64_t c = 0; c < o.creators; ++c)
      fmt::format_to(std::back_inserter(w.buf()), "c{}\tcreator\t\t{}\n", c,
                     creator_start[c] > start ? "new" : "established");
    for (int64_t i = 0; i < o.items; ++i) {
      fmt::format_to(std::back_inserter(w.buf()), "i{}\titem\tc{}\ttopic-{}\n", i, items[i].creator, items[i].topic);
      w.MaybeFlush();
    }
    w.Flush();
    if (std::fclose(f) != 0) return absl::InternalError("write failed: entities.tsv");
  }

  // Follow graph: users follow people in their community (by fame), a few outside,
  // and creators on their topics (by popularity). In-degrees follow the fame law.
  std::vector<Sampler> comm_fame(K);
  for (int c = 0; c < K; ++c)
    for (int64_t u : comm_members[c]) comm_fame[c].Add(fame[u]);
  Sampler global_fame;
  for (int64_t u = 0; u < o.users; ++u) global_fame.Add(fame[u]);
  std::vector<std::vector<int64_t>> follows_creator(o.users), follows_user(o.users);
  FILE* f = std::fopen((out_dir + "/events.tsv").c_str(), "wb");
  if (!f) return absl::InternalError("cannot write " + out_dir + "/events.tsv");
  Writer w(f);
  auto out = std::back_inserter(w.buf());
  fmt::format_to(out, "ts\tviewer_id\tentity_id\taction\tweight\n");
  int64_t n_events = 0, n_follows = 0;
  const int64_t follow_budget = o.events / 5;  // about a fifth of the log is the initial graph
  const double mean_follows = std::max(1.0, double(follow_budget) / double(o.users));
  for (int64_t u = 0; u < o.users && n_events < follow_budget; ++u) {
    int n = std::max(1, int(mean_follows * 0.5 * pareto(2.0)));
    for (int j = 0; j < n; ++j) {
      int64_t ts = start + int64_t(U(rng) * 2 * day);
      double r = U(rng);
      if (r < 0.55) {
        int64_t v = comm_members[user_comm[u]][comm_fame[user_comm[u]].Sample(rng)];
        if (v == u || std::find(follows_user[u].begin(), follows_user[u].end(), v) != follows_user[u].end()) continue;
        follows_user[u].push_back(v);
        fmt::format_to(out, "{}\tu{}\tu{}\tfollow\t3\n", ts, u, v);
      } else if (r < 0.65) {
        int64_t v = int64_t(global_fame.Sample(rng));
        if (v == u || std::find(follows_user[u].begin(), follows_user[u].end(), v) != follows_user[u].end()) continue;
        follows_user[u].push_back(v);
        fmt::format_to(out, "{}\tu{}\tu{}\tfollow\t3\n", ts, u, v);
      } else {
        int t = user_topics[u][rng() % 3];
        if (topic_creators[t].empty()) continue;
        int64_t c = topic_creators[t][creators_by_topic[t].Sample(rng)];
        if (creator_start[c] > ts) continue;
        if (std::find(follows_creator[u].begin(), follows_creator[u].end(), c) != follows_creator[u].end()) continue;
        follows_creator[u].push_back(c);
        fmt::format_to(out, "{}\tu{}\tc{}\tfollow\t3\n", ts, u, c);
      }
      ++n_events;
      ++n_follows;
    }
    w.MaybeFlush();
  }

  // Sessions: time advances monotonically; each event picks an active user and
  // an item through topic affinity, social influence (followed creators, items
  // friends engaged with) or global popularity, favouring recent items.
  Sampler active;
  for (int64_t u = 0; u < o.users; ++u) active.Add(activity[u]);
  std::vector<std::vector<int64_t>> engaged(o.users);  // recent items per user
  const int64_t remaining = std::max<int64_t>(0, o.events - n_events);
  const int64_t t0 = start + 2 * day;
  const double step = double(o.end_ms - t0) / double(std::max<int64_t>(1, remaining));
  const int64_t n_initial = n_events;
  int64_t i_ev = 0;
  while (n_events < o.events) {
    ++i_ev;
    int64_t ts = std::min(o.end_ms - 3, t0 + int64_t(double(n_events - n_initial) * step));
    int64_t u = int64_t(active.Sample(rng));
    int64_t item = -1;
    double r = U(rng);
    double affinity = 0.3;
    if (r < 0.2 && !follows_creator[u].empty()) {  // new from creators the user follows
      int64_t c = follows_creator[u][rng() % follows_creator[u].size()];
      auto& ci = creator_items[c];
      size_t n = std::upper_bound(ci.begin(), ci.end(), ts, [&](int64_t t, int64_t i) { return t < items[i].published; }) - ci.begin();
      if (n) item = ci[n - 1 - std::min<size_t>(n - 1, size_t(U(rng) * U(rng) * n))];
      affinity = 0.6;
    } else if (r < 0.35 && !follows_user[u].empty()) {  // what friends engaged with
      int64_t v = follows_user[u][rng() % follows_user[u].size()];
      if (!engaged[v].empty()) item = engaged[v][rng() % engaged[v].size()];
      affinity = 0.5;
    } else if (r < 0.9) {  // topic affinity, favouring recent items
      int t = user_topics[u][rng() % 3];
      size_t n = std::upper_bound(topic_pub[t].begin(), topic_pub[t].end(), ts) - topic_pub[t].begin();
      if (n) {
        size_t idx;
        if (U(rng) < 0.5) {
          size_t lo = std::lower_bound(topic_pub[t].begin(), topic_pub[t].begin() + n, ts - 3 * day) - topic_pub[t].begin();
          idx = lo < n ? lo + topic_sampler[t].Sample(rng, n - lo) % (n - lo) : topic_sampler[t].Sample(rng, n);
          if (lo < n) {  // resample inside the recent window by quality
            idx = lo + size_t(U(rng) * double(n - lo));
          }
        } else {
          idx = topic_sampler[t].Sample(rng, n);
        }
        item = topic_items[t][idx];
      }
      affinity = 0.45;
    } else {  // globally popular (any topic)
      int t = int(rng() % T);
      size_t n = std::upper_bound(topic_pub[t].begin(), topic_pub[t].end(), ts) - topic_pub[t].begin();
      if (n) item = topic_items[t][topic_sampler[t].Sample(rng, n)];
      affinity = 0.15;
    }
    if (item < 0 || items[item].published > ts) continue;
    const Item& it = items[item];
    bool on_topic = it.topic == user_topics[u][0] || it.topic == user_topics[u][1] || it.topic == user_topics[u][2];
    double p_click = std::min(0.95, affinity * (on_topic ? 1.5 : 0.5) * std::min(2.0, 0.6 + 0.4 * it.quality));
    // Impressions are logged for a share of exposures.
    if (U(rng) < 0.25) {
      fmt::format_to(out, "{}\tu{}\ti{}\timpression\t0\n", ts, u, item);
      ++n_events;
    }
    if (n_events >= o.events) break;
    if (U(rng) < p_click) {
      double a = U(rng);
      const char* action = a < 0.45 ? "click" : a < 0.8 ? "play" : "like";
      double weight = a < 0.45 ? 1 : a < 0.8 ? 1 : 2;
      fmt::format_to(out, "{}\tu{}\ti{}\t{}\t{}\n", ts + 1, u, item, action, weight);
      ++n_events;
      engaged[u].push_back(item);
      if (engaged[u].size() > 20) engaged[u].erase(engaged[u].begin());
      // Engagement with a creator's work sometimes turns into a follow.
      if (n_events < o.events && U(rng) < 0.01 && std::find(follows_creator[u].begin(), follows_creator[u].end(), it.creator) == follows_creator[u].end()) {
        follows_creator[u].push_back(it.creator);
        fmt::format_to(out, "{}\tu{}\tc{}\tfollow\t3\n", ts + 2, u, it.creator);
        ++n_events;
        ++n_follows;
      }
    } else if (!on_topic && U(rng) < 0.06) {
      fmt::format_to(out, "{}\tu{}\ti{}\thide\t-5\n", ts + 1, u, item);
      ++n_events;
    } else if (U(rng) < 0.002 && !follows_user[u].empty()) {
      int64_t v = follows_user[u].back();
      follows_user[u].pop_back();
      fmt::format_to(out, "{}\tu{}\tu{}\tunfollow\t-3\n", ts + 1, u, v);
      ++n_events;
    }
    w.MaybeFlush();
    if (progress && (i_ev & 0xFFFFF) == 0) progress(double(n_events) / double(o.events));
  }
  w.Flush();
  if (std::fclose(f) != 0) return absl::InternalError("write failed: events.tsv");
  if (stats) *stats = {o.users, o.creators, o.items, n_events, n_follows};
  return absl::OkStatus();
}

}  // namespace affinity
