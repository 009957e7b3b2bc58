// Offline evaluation, step 5: the metrics over the ranked lists.
#include <algorithm>
#include <array>
#include <map>
#include <numeric>

#include "eval/internal/eval_parts.h"

namespace affinity::eval_internal {
namespace {

// Popularity tier of each entity: 0 head (top 20% by engagers), 1 mid (next
// 30%), 2 tail; and its popularity percentile (1 = most popular).
struct Popularity {
  std::vector<double> pct;
  std::vector<int> tier;
};

Popularity ReadPopularity(const Snapshot* snap, Kind target, uint32_t catalogue) {
  std::vector<double> pop(catalogue, 0);
  const KindSnapshot& ks = snap->kind(target);
  for (uint32_t i = 0; i < catalogue && i < ks.engagers.size(); ++i) pop[i] = ks.engagers[i];
  std::vector<uint32_t> order(catalogue);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return pop[a] > pop[b]; });
  Popularity p;
  std::vector<double>& pct = p.pct;
  std::vector<int>& tier = p.tier;
  pct.assign(catalogue, 0);
  tier.assign(catalogue, 2);
  for (size_t r = 0; r < order.size(); ++r) {
    pct[order[r]] = 1.0 - double(r) / double(std::max<size_t>(1, order.size()));
    double q = double(r) / double(std::max<size_t>(1, order.size()));
    tier[order[r]] = q < 0.2 ? 0 : q < 0.5 ? 1 : 2;
  }
  return p;
}

// Quality at k and along the curve, coverage and popularity bias; fills each
// user's metrics at k.
void Quality(const RankedLists& in, const Popularity& p, std::vector<UserMetrics>* per_user_out, EvalResult* out) {
  const EvalOptions& o = in.o;
  const EntityRegistry& registry = in.registry;
  const Kind target = in.target;
  const auto& ranked = in.ranked;
  const auto& truth = in.truth;
  const size_t n_users = in.test.users.size();
  const uint32_t catalogue = registry.Count(target);
  EvalResult& result = *out;
  const std::vector<double>& pct = p.pct;
  const std::vector<int>& tier = p.tier;
  std::vector<UserMetrics>& per_user = *per_user_out;
  std::vector<int> ks_curve = {1, 5, 10, 20, 50, 100};
  if (std::find(ks_curve.begin(), ks_curve.end(), o.k) == ks_curve.end()) ks_curve.push_back(o.k);
  std::sort(ks_curve.begin(), ks_curve.end());
  std::map<int, MetricSums> sums;
  per_user.assign(n_users, UserMetrics());
  std::vector<char> recommended(catalogue, 0);
  std::array<double, 3> tier_exposure{}, tier_hits{}, tier_test{};
  std::array<double, 10> decile_exposure{};
  double pct_sum = 0, slots = 0;
  for (size_t u = 0; u < n_users; ++u) {
    for (int k : ks_curve) {
      UserMetrics m = ComputeUserMetrics(ranked[u], truth[u], k);
      sums[k].Add(m);
      if (k == o.k) per_user[u] = m;
    }
    size_t n = std::min<size_t>(ranked[u].size(), size_t(o.k));
    for (size_t r = 0; r < n; ++r) {
      uint32_t id = ranked[u][r];
      if (id >= catalogue) continue;
      recommended[id] = 1;
      pct_sum += pct[id];
      slots += 1;
      tier_exposure[tier[id]] += 1;
      decile_exposure[std::min(9, int((1.0 - pct[id]) * 10))] += 1;
      if (truth[u].count(id)) tier_hits[tier[id]] += 1;
    }
    for (uint32_t id : truth[u])
      if (id < catalogue) tier_test[tier[id]] += 1;
  }
  result.users = int64_t(n_users);
  result.at_k = sums[o.k].Mean();
  for (auto& [k, s] : sums) result.curve[k] = s.Mean();
  result.coverage = catalogue ? double(std::count(recommended.begin(), recommended.end(), 1)) / catalogue : 0;
  result.popularity_bias = slots > 0 ? pct_sum / slots : 0;
  const char* tier_names[3] = {"head (top 20% by engagers)", "mid (next 30%)", "tail (bottom 50%)"};
  const double tier_share[3] = {0.2, 0.3, 0.5};
  for (int t = 0; t < 3; ++t)
    result.popularity_tiers.push_back({tier_names[t], tier_share[t], slots > 0 ? tier_exposure[t] / slots : 0,
                                       tier_test[t] > 0 ? tier_hits[t] / tier_test[t] : 0});
  for (int dcl = 0; dcl < 10; ++dcl)
    result.popularity_curve.push_back({(dcl + 1) / 10.0, slots > 0 ? decile_exposure[dcl] / slots : 0});
}

// Exposure fairness: how recommendation slots spread over entities and over
// creators (an item's slot is its creator's exposure; a creator's own slot
// too), by creator popularity tier, with Gini coefficients.
void Exposure(const RankedLists& in, EvalResult* out) {
  const EvalOptions& o = in.o;
  const EntityRegistry& registry = in.registry;
  const Snapshot* snap = in.snap;
  const Kind target = in.target;
  const auto& ranked = in.ranked;
  const size_t n_users = in.test.users.size();
  const uint32_t catalogue = registry.Count(target);
  EvalResult& result = *out;
  std::vector<double> entity_slots(catalogue, 0);
  const uint32_t n_creators = registry.Count(Kind::kCreator);
  std::vector<double> creator_slots(n_creators, 0);
  double creator_total = 0;
  for (size_t u = 0; u < n_users; ++u)
    for (size_t r = 0; r < ranked[u].size() && r < size_t(o.k); ++r) {
      const uint32_t id = ranked[u][r];
      if (id >= catalogue) continue;
      entity_slots[id] += 1;
      Ref creator = target == Kind::kCreator ? Ref(Kind::kCreator, id)
                    : target == Kind::kItem ? registry.CreatorOf(Ref(Kind::kItem, id)) : Ref();
      if (creator.valid() && creator.id() < n_creators) creator_slots[creator.id()] += 1, creator_total += 1;
    }
  result.exposure_gini = Gini(entity_slots);
  if (creator_total > 0) {
    result.creator_exposure_gini = Gini(creator_slots);
    // Creator popularity: distinct engagers of the creator and of its items.
    std::vector<double> audience(n_creators, 0);
    const KindSnapshot& cks = snap->kind(Kind::kCreator);
    for (uint32_t c = 0; c < n_creators && c < cks.engagers.size(); ++c) audience[c] += cks.engagers[c];
    const KindSnapshot& iks = snap->kind(Kind::kItem);
    for (uint32_t i = 0; i < iks.engagers.size(); ++i) {
      Ref c = registry.CreatorOf(Ref(Kind::kItem, i));
      if (c.valid() && c.id() < n_creators) audience[c.id()] += iks.engagers[i];
    }
    std::vector<uint32_t> by_pop(n_creators);
    std::iota(by_pop.begin(), by_pop.end(), 0u);
    std::stable_sort(by_pop.begin(), by_pop.end(), [&](uint32_t a, uint32_t b) { return audience[a] > audience[b]; });
    const char* names[3] = {"head creators (top 20% by audience)", "mid creators (next 30%)", "tail creators (bottom 50%)"};
    const double bounds[4] = {0, 0.2, 0.5, 1.0};
    for (int t = 0; t < 3; ++t) {
      size_t b = size_t(bounds[t] * n_creators), e = size_t(bounds[t + 1] * n_creators);
      double exp = 0;
      for (size_t j = b; j < e; ++j) exp += creator_slots[by_pop[j]];
      result.creator_tiers.push_back({names[t], double(e - b) / n_creators, exp / creator_total, 0});
    }
    // Creators not yet established (the serving floor's definition).
    double new_slots = 0, new_count = 0;
    for (uint32_t c = 0; c < n_creators; ++c)
      if (c >= cks.engagers.size() || cks.engagers[c] < float(o.config.serving.new_creator_max_audience))
        new_count += 1, new_slots += creator_slots[c];
    result.creator_tiers.push_back({"new creators (serving.new_creator_max_audience)", new_count / n_creators,
                                    new_slots / creator_total, 0});
  }
}

// Viewer cohorts (the users' cohort labels): quality and tail exposure.
void ViewerCohorts(const RankedLists& in, const Popularity& p, const std::vector<UserMetrics>& per_user,
                   EvalResult* out) {
  const EvalOptions& o = in.o;
  const EntityRegistry& registry = in.registry;
  const Kind target = in.target;
  const auto& ranked = in.ranked;
  const size_t n_users = in.test.users.size();
  const uint32_t catalogue = registry.Count(target);
  EvalResult& result = *out;
  const auto& test = in.test;
  const std::vector<int>& tier = p.tier;
  std::map<std::string, std::pair<MetricSums, std::pair<double, double>>> cohorts;
  for (size_t u = 0; u < n_users; ++u) {
    auto r = registry.Find(test.users[u]);
    auto info = r ? registry.Get(*r) : nullptr;
    if (!info || info->cohort.empty()) continue;
    auto& c = cohorts[info->cohort];
    c.first.Add(per_user[u]);
    for (size_t j = 0; j < ranked[u].size() && j < size_t(o.k); ++j)
      if (ranked[u][j] < catalogue) c.second.first += tier[ranked[u][j]] == 2, c.second.second += 1;
  }
  for (auto& [name, c] : cohorts) {
    UserMetrics m = c.first.Mean();
    result.viewer_cohorts.push_back({name, c.first.users, m.recall, m.ndcg, c.second.second > 0 ? c.second.first / c.second.second : 0});
  }
}

// Viewer activity deciles (by training interactions).
void ActivityDeciles(const RankedLists& in, const std::vector<UserMetrics>& per_user, EvalResult* out) {
  const auto& registry = in.registry;
  const auto& live = in.live;
  const auto& test = in.test;
  const size_t n_users = test.users.size();
  EvalResult& result = *out;
  std::vector<std::pair<double, size_t>> activity(n_users);
  for (size_t u = 0; u < n_users; ++u) {
    auto r = registry.Find(test.users[u]);
    activity[u] = {r ? double(live.Viewer(*r)->engaged.size()) : 0.0, u};
  }
  std::sort(activity.begin(), activity.end());
  for (int dcl = 0; dcl < 10; ++dcl) {
    size_t b = n_users * size_t(dcl) / 10, e = n_users * size_t(dcl + 1) / 10;
    MetricSums s;
    for (size_t j = b; j < e; ++j) s.Add(per_user[activity[j].second]);
    UserMetrics m = s.Mean();
    std::string name = "decile " + std::to_string(dcl + 1) + " (" + std::to_string(int64_t(b < e ? activity[b].first : 0)) +
                       "-" + std::to_string(int64_t(b < e ? activity[e - 1].first : 0)) + " interactions)";
    result.activity_deciles.push_back({name, s.users, m.recall, m.ndcg});
  }
}

}  // namespace

void FillMetrics(const RankedLists& lists, EvalResult* result) {
  const Popularity p = ReadPopularity(lists.snap, lists.target, lists.registry.Count(lists.target));
  std::vector<UserMetrics> per_user;
  Quality(lists, p, &per_user, result);
  Exposure(lists, result);
  ViewerCohorts(lists, p, per_user, result);
  ActivityDeciles(lists, per_user, result);
}

}  // namespace affinity::eval_internal
