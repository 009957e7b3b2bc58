#include "data/generate.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"

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

// Readable names, derived from the id alone (no random draws, so the events are
// the same with or without them): people, bands for creators, titles for items.
constexpr const char* kFirst[] = {"Ana", "Bo", "Cy", "Dana", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lea",
                                  "Milo", "Nia", "Omar", "Pia", "Quin", "Rosa", "Sami", "Tess", "Ugo", "Vera",
                                  "Wes", "Xena", "Yuki", "Zoe"};
constexpr const char* kLast[] = {"Silva", "Okafor", "Novak", "Berg", "Tanaka", "Moreau", "Rossi", "Khan", "Lund",
                                 "Park", "Mendes", "Haas", "Ito", "Costa", "Ward", "Dubois"};
constexpr const char* kAdjectives[] = {"Quiet", "Golden", "Electric", "Velvet", "Midnight", "Paper", "Neon", "Silver",
                                       "Wild", "Lunar", "Amber", "Hidden", "Crimson", "Hollow", "Bright", "Distant"};
constexpr const char* kNouns[] = {"Harbor", "Owls", "Rivers", "Engines", "Gardens", "Lanterns", "Tides", "Foxes",
                                  "Mirrors", "Echoes", "Orchards", "Comets", "Bridges", "Meadows", "Signals", "Pines"};

template <size_t A, size_t B>
std::string TwoWordName(int64_t id, const char* const (&a)[A], const char* const (&b)[B], const char* sep,
                        const char* prefix = "") {
  const int64_t combos = int64_t(A * B);
  std::string name = absl::StrCat(prefix, a[size_t(id % int64_t(A))], sep, b[size_t((id / int64_t(A)) % int64_t(B))]);
  if (id >= combos) absl::StrAppend(&name, " ", id / combos + 1);
  return name;
}


struct Item {
  int64_t creator;
  int topic;
  int64_t published;
  double quality;
};

// The world being generated: its random state and what each step leaves for
// the next. The steps run in a fixed order and draw from one generator, so the
// same options write the same files.
class WorldBuilder {
 public:
  explicit WorldBuilder(const GenerateOptions& o)
      : o_(o), rng_(o.seed), T_(o.topics), start_(o.end_ms - int64_t(o.days) * kDay),
        K_(int(std::max<int64_t>(4, o.users / 2000))) {}

  void People();      // communities, users, creators
  void Catalogue();   // items, indexed by topic and by creator
  absl::Status WriteEntities(const std::string& path) const;
  // events.tsv: the follow graph, then the sessions.
  absl::Status WriteEvents(const std::string& path, GenerateStats* stats, const std::function<void(double)>& progress);

 private:
  static constexpr int64_t kDay = 86400000LL;
  double U() { return U_(rng_); }
  double Pareto(double alpha) { return std::pow(1.0 - U(), -1.0 / alpha); }
  void FollowGraph(fmt::memory_buffer& out, Writer& w);
  // An item for user u at ts through one of the paths people find things by,
  // with the affinity that path carries; -1 when the path found nothing.
  int64_t PickItem(int64_t u, int64_t ts, double* affinity);
  // What user u does with `item` shown at ts: an impression, maybe a click,
  // play or like (and sometimes a follow), a hide, or an unfollow. False once
  // the log is full.
  bool Respond(int64_t u, int64_t item, int64_t ts, double affinity, fmt::memory_buffer& out);

  const GenerateOptions& o_;
  std::mt19937_64 rng_;
  std::uniform_real_distribution<double> U_{0, 1};
  const int T_;
  const int64_t start_;
  const int K_;
  std::vector<std::array<int, 3>> community_topics_;
  std::vector<int> user_comm_;
  std::vector<std::array<int, 3>> user_topics_;
  std::vector<double> activity_, fame_;
  std::vector<std::vector<int64_t>> comm_members_;
  std::vector<int> creator_topic_;
  std::vector<double> creator_pop_;
  std::vector<int64_t> creator_start_;
  std::vector<Sampler> creators_by_topic_;
  std::vector<std::vector<int64_t>> topic_creators_;
  std::vector<Item> items_;
  std::vector<std::vector<int64_t>> topic_items_, topic_pub_, creator_items_;
  std::vector<Sampler> topic_sampler_;
  std::vector<std::vector<int64_t>> follows_creator_, follows_user_, engaged_;
  int64_t n_events_ = 0, n_follows_ = 0;
};

void WorldBuilder::People() {
  // Communities, each with three favourite topics.
  community_topics_.resize(K_);
  for (auto& ct : community_topics_)
    for (auto& t : ct) t = int(rng_() % T_);
  // Users: community, personal topics, activity and fame (power law).
  user_comm_.resize(o_.users);
  user_topics_.resize(o_.users);
  activity_.resize(o_.users);
  fame_.resize(o_.users);
  comm_members_.resize(K_);
  for (int64_t u = 0; u < o_.users; ++u) {
    int c = int(rng_() % K_);
    user_comm_[u] = c;
    comm_members_[c].push_back(u);
    user_topics_[u] = {community_topics_[c][rng_() % 3], community_topics_[c][rng_() % 3], int(rng_() % T_)};
    activity_[u] = Pareto(1.6);
    fame_[u] = Pareto(1.3);
  }
  // Creators: topic, popularity (power law), start day (the "new" cohort joined late).
  creator_topic_.resize(o_.creators);
  creator_pop_.resize(o_.creators);
  creator_start_.resize(o_.creators);
  creators_by_topic_.resize(T_);
  topic_creators_.resize(T_);
  for (int64_t c = 0; c < o_.creators; ++c) {
    creator_topic_[c] = int(rng_() % T_);
    creator_pop_[c] = Pareto(1.2);
    creator_start_[c] = U() < 0.15 ? start_ + int64_t(U() * 0.7 * o_.days) * kDay : start_ - 30 * kDay;
    topic_creators_[creator_topic_[c]].push_back(c);
    creators_by_topic_[creator_topic_[c]].Add(creator_pop_[c]);
  }
}

void WorldBuilder::Catalogue() {
  // Items: by a creator (prolific creators publish more), mostly on its topic.
  Sampler creator_sampler;
  for (int64_t c = 0; c < o_.creators; ++c) creator_sampler.Add(std::sqrt(creator_pop_[c]));
  items_.resize(o_.items);
  for (auto& it : items_) {
    it.creator = int64_t(creator_sampler.Sample(rng_));
    it.topic = U() < 0.8 ? creator_topic_[it.creator] : int(rng_() % T_);
    int64_t from = std::max(start_ - 10 * kDay, creator_start_[it.creator]);
    it.published = from + int64_t(U() * double(o_.end_ms - from));
    it.quality = std::exp(0.6 * std::normal_distribution<double>(0, 1)(rng_)) * std::pow(creator_pop_[it.creator], 0.3);
  }
  // Per topic: items sorted by publish time, with cumulative quality.
  topic_items_.resize(T_);
  for (int64_t i = 0; i < o_.items; ++i) topic_items_[items_[i].topic].push_back(i);
  topic_sampler_.resize(T_);
  topic_pub_.resize(T_);
  auto by_time = [&](int64_t a, int64_t b) { return items_[a].published < items_[b].published; };
  for (int t = 0; t < T_; ++t) {
    auto& v = topic_items_[t];
    std::sort(v.begin(), v.end(), by_time);
    for (int64_t i : v) {
      topic_sampler_[t].Add(items_[i].quality);
      topic_pub_[t].push_back(items_[i].published);
    }
  }
  // Per creator: items by publish time (for "new from creators you follow").
  creator_items_.resize(o_.creators);
  for (int t = 0; t < T_; ++t)
    for (int64_t i : topic_items_[t]) creator_items_[items_[i].creator].push_back(i);
  for (auto& v : creator_items_) std::sort(v.begin(), v.end(), by_time);
}

absl::Status WorldBuilder::WriteEntities(const std::string& path) const {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return absl::InternalError("cannot write " + path);
  Writer w(f);
  auto out = std::back_inserter(w.buf());
  fmt::format_to(out, "id\tkind\tcreator_id\tcohort\tname\n");
  for (int64_t u = 0; u < o_.users; ++u) {
    fmt::format_to(out, "u{}\tuser\t\t{}\t{}\n", u, kRegions[user_comm_[u] % 5], TwoWordName(u, kFirst, kLast, " "));
    w.MaybeFlush();
  }
  for (int64_t c = 0; c < o_.creators; ++c)
    fmt::format_to(out, "c{}\tcreator\t\t{}\t{}\n", c, creator_start_[c] > start_ ? "new" : "established",
                   TwoWordName(c, kAdjectives, kNouns, " ", "The "));
  for (int64_t i = 0; i < o_.items; ++i) {
    fmt::format_to(out, "i{}\titem\tc{}\ttopic-{}\t{}\n", i, items_[i].creator, items_[i].topic,
                   TwoWordName(i * 7 + 3, kAdjectives, kNouns, " "));
    w.MaybeFlush();
  }
  w.Flush();
  if (std::fclose(f) != 0) return absl::InternalError("write failed: entities.tsv");
  return absl::OkStatus();
}

// Users follow people in their community (by fame), a few outside, and
// creators on their topics (by popularity). In-degrees follow the fame law.
void WorldBuilder::FollowGraph(fmt::memory_buffer& buf, Writer& w) {
  auto out = std::back_inserter(buf);
  std::vector<Sampler> comm_fame(K_);
  for (int c = 0; c < K_; ++c)
    for (int64_t u : comm_members_[c]) comm_fame[c].Add(fame_[u]);
  Sampler global_fame;
  for (int64_t u = 0; u < o_.users; ++u) global_fame.Add(fame_[u]);
  const int64_t follow_budget = o_.events / 5;  // about a fifth of the log is the initial graph
  const double mean_follows = std::max(1.0, double(follow_budget) / double(o_.users));
  auto has = [](const std::vector<int64_t>& v, int64_t x) { return std::find(v.begin(), v.end(), x) != v.end(); };
  for (int64_t u = 0; u < o_.users && n_events_ < follow_budget; ++u) {
    int n = std::max(1, int(mean_follows * 0.5 * Pareto(2.0)));
    for (int j = 0; j < n; ++j) {
      int64_t ts = start_ + int64_t(U() * 2 * kDay);
      double r = U();
      if (r < 0.65) {
        int64_t v = r < 0.55 ? comm_members_[user_comm_[u]][comm_fame[user_comm_[u]].Sample(rng_)]
                             : int64_t(global_fame.Sample(rng_));
        if (v == u || has(follows_user_[u], v)) continue;
        follows_user_[u].push_back(v);
        fmt::format_to(out, "{}\tu{}\tu{}\tfollow\t3\n", ts, u, v);
      } else {
        int t = user_topics_[u][rng_() % 3];
        if (topic_creators_[t].empty()) continue;
        int64_t c = topic_creators_[t][creators_by_topic_[t].Sample(rng_)];
        if (creator_start_[c] > ts || has(follows_creator_[u], c)) continue;
        follows_creator_[u].push_back(c);
        fmt::format_to(out, "{}\tu{}\tc{}\tfollow\t3\n", ts, u, c);
      }
      ++n_events_;
      ++n_follows_;
    }
    w.MaybeFlush();
  }
}

int64_t WorldBuilder::PickItem(int64_t u, int64_t ts, double* affinity) {
  int64_t item = -1;
  double r = U();
  *affinity = 0.3;
  if (r < 0.2 && !follows_creator_[u].empty()) {  // new from creators the user follows
    int64_t c = follows_creator_[u][rng_() % follows_creator_[u].size()];
    auto& ci = creator_items_[c];
    size_t n = std::upper_bound(ci.begin(), ci.end(), ts, [&](int64_t t, int64_t i) { return t < items_[i].published; }) -
               ci.begin();
    if (n) item = ci[n - 1 - std::min<size_t>(n - 1, size_t(U() * U() * n))];
    *affinity = 0.6;
  } else if (r < 0.35 && !follows_user_[u].empty()) {  // what friends engaged with
    int64_t v = follows_user_[u][rng_() % follows_user_[u].size()];
    if (!engaged_[v].empty()) item = engaged_[v][rng_() % engaged_[v].size()];
    *affinity = 0.5;
  } else if (r < 0.9) {  // topic affinity, favouring recent items
    int t = user_topics_[u][rng_() % 3];
    size_t n = std::upper_bound(topic_pub_[t].begin(), topic_pub_[t].end(), ts) - topic_pub_[t].begin();
    if (n) {
      size_t idx;
      if (U() < 0.5) {
        size_t lo = std::lower_bound(topic_pub_[t].begin(), topic_pub_[t].begin() + n, ts - 3 * kDay) -
                    topic_pub_[t].begin();
        idx = lo < n ? lo + topic_sampler_[t].Sample(rng_, n - lo) % (n - lo) : topic_sampler_[t].Sample(rng_, n);
        if (lo < n) idx = lo + size_t(U() * double(n - lo));  // resample inside the recent window
      } else {
        idx = topic_sampler_[t].Sample(rng_, n);
      }
      item = topic_items_[t][idx];
    }
    *affinity = 0.45;
  } else {  // globally popular (any topic)
    int t = int(rng_() % T_);
    size_t n = std::upper_bound(topic_pub_[t].begin(), topic_pub_[t].end(), ts) - topic_pub_[t].begin();
    if (n) item = topic_items_[t][topic_sampler_[t].Sample(rng_, n)];
    *affinity = 0.15;
  }
  return item;
}

bool WorldBuilder::Respond(int64_t u, int64_t item, int64_t ts, double affinity, fmt::memory_buffer& buf) {
  auto out = std::back_inserter(buf);
  const Item& it = items_[item];
  const auto& topics = user_topics_[u];
  bool on_topic = it.topic == topics[0] || it.topic == topics[1] || it.topic == topics[2];
  double p_click = std::min(0.95, affinity * (on_topic ? 1.5 : 0.5) * std::min(2.0, 0.6 + 0.4 * it.quality));
  // Impressions are logged for a share of exposures.
  if (U() < 0.25) {
    fmt::format_to(out, "{}\tu{}\ti{}\timpression\t0\n", ts, u, item);
    ++n_events_;
  }
  if (n_events_ >= o_.events) return false;
  if (U() < p_click) {
    double a = U();
    const char* action = a < 0.45 ? "click" : a < 0.8 ? "play" : "like";
    double weight = a < 0.45 ? 1 : a < 0.8 ? 1 : 2;
    fmt::format_to(out, "{}\tu{}\ti{}\t{}\t{}\n", ts + 1, u, item, action, weight);
    ++n_events_;
    engaged_[u].push_back(item);
    if (engaged_[u].size() > 20) engaged_[u].erase(engaged_[u].begin());
    // Engagement with a creator's work sometimes turns into a follow.
    auto& fc = follows_creator_[u];
    if (n_events_ < o_.events && U() < 0.01 && std::find(fc.begin(), fc.end(), it.creator) == fc.end()) {
      fc.push_back(it.creator);
      fmt::format_to(out, "{}\tu{}\tc{}\tfollow\t3\n", ts + 2, u, it.creator);
      ++n_events_;
      ++n_follows_;
    }
  } else if (!on_topic && U() < 0.06) {
    fmt::format_to(out, "{}\tu{}\ti{}\thide\t-5\n", ts + 1, u, item);
    ++n_events_;
  } else if (U() < 0.002 && !follows_user_[u].empty()) {
    int64_t v = follows_user_[u].back();
    follows_user_[u].pop_back();
    fmt::format_to(out, "{}\tu{}\tu{}\tunfollow\t-3\n", ts + 1, u, v);
    ++n_events_;
  }
  return true;
}

absl::Status WorldBuilder::WriteEvents(const std::string& path, GenerateStats* stats,
                                       const std::function<void(double)>& progress) {
  follows_creator_.assign(o_.users, {});
  follows_user_.assign(o_.users, {});
  engaged_.assign(o_.users, {});  // recent items per user
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return absl::InternalError("cannot write " + path);
  Writer w(f);
  auto out = std::back_inserter(w.buf());
  fmt::format_to(out, "ts\tviewer_id\tentity_id\taction\tweight\n");
  FollowGraph(w.buf(), w);
  // Sessions: time advances monotonically; each event picks an active user and
  // an item through topic affinity, social influence (followed creators, items
  // friends engaged with) or global popularity, favouring recent items.
  Sampler active;
  for (int64_t u = 0; u < o_.users; ++u) active.Add(activity_[u]);
  const int64_t remaining = std::max<int64_t>(0, o_.events - n_events_);
  const int64_t t0 = start_ + 2 * kDay;
  const double step = double(o_.end_ms - t0) / double(std::max<int64_t>(1, remaining));
  const int64_t n_initial = n_events_;
  int64_t i_ev = 0;
  while (n_events_ < o_.events) {
    ++i_ev;
    int64_t ts = std::min(o_.end_ms - 3, t0 + int64_t(double(n_events_ - n_initial) * step));
    int64_t u = int64_t(active.Sample(rng_));
    double affinity;
    const int64_t item = PickItem(u, ts, &affinity);
    if (item < 0 || items_[item].published > ts) continue;
    if (!Respond(u, item, ts, affinity, w.buf())) break;
    w.MaybeFlush();
    if (progress && (i_ev & 0xFFFFF) == 0) progress(double(n_events_) / double(o_.events));
  }
  w.Flush();
  if (std::fclose(f) != 0) return absl::InternalError("write failed: events.tsv");
  if (stats) *stats = {o_.users, o_.creators, o_.items, n_events_, n_follows_};
  return absl::OkStatus();
}

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
  WorldBuilder world(o);
  world.People();
  world.Catalogue();
  if (auto s = world.WriteEntities(out_dir + "/entities.tsv"); !s.ok()) return s;
  return world.WriteEvents(out_dir + "/events.tsv", stats, progress);
}

}  // namespace affinity
