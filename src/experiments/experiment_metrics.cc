#include "experiments/experiment_metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace affinity {
namespace {

// A viewer's stored counters, in this order.
enum ViewerField { kVArm = 0, kVRequests, kVResponses, kVErrors, kVExposures, kVClicks, kVHides, kVCovariate, kVFields };
// An arm's: degraded, fallback, then the latency histogram.
enum ArmField { kADegraded = 0, kAFallback, kALatency };

constexpr double kLatencyBase = 0.05, kLatencyGrowth = 1.25;

double Percentile(const std::array<int64_t, kLatencyBuckets>& h, double q) {
  int64_t total = 0;
  for (int64_t c : h) total += c;
  if (total == 0) return 0;
  const double want = q * double(total);
  int64_t seen = 0;
  for (int b = 0; b < kLatencyBuckets; ++b) {
    seen += h[size_t(b)];
    if (double(seen) >= want) return LatencyBucketUpperMs(b);
  }
  return LatencyBucketUpperMs(kLatencyBuckets - 1);
}

}  // namespace

int LatencyBucket(double ms) {
  if (!(ms > kLatencyBase)) return 0;
  const int b = int(std::ceil(std::log(ms / kLatencyBase) / std::log(kLatencyGrowth)));
  return std::clamp(b, 0, kLatencyBuckets - 1);
}

double LatencyBucketUpperMs(int bucket) { return kLatencyBase * std::pow(kLatencyGrowth, bucket); }

ExperimentMetrics::ExperimentMetrics(std::string id, size_t arms) : prefix_(Prefix(id)), arms_(arms) {}

ViewerCounts& ExperimentMetrics::Touch(const std::string& viewer, int arm, int64_t covariate,
                                       std::vector<int64_t>* delta) {
  delta->assign(kVFields, 0);
  auto [it, inserted] = viewers_.try_emplace(viewer);
  if (inserted) {
    it->second.arm = arm;
    it->second.covariate = covariate;
    (*delta)[kVArm] = arm + 1;
    (*delta)[kVCovariate] = covariate;
  }
  return it->second;
}

void ExperimentMetrics::OnResponse(const std::string& viewer, int arm, int64_t covariate, const ServedFacts& f,
                                   std::vector<CounterDelta>* out) {
  if (arm < 0 || size_t(arm) >= arms_.size()) return;
  std::vector<int64_t> d;
  ViewerCounts& v = Touch(viewer, arm, covariate, &d);
  const int64_t n = int64_t(f.results.size());
  v.requests++, v.responses++, v.exposures += n;
  d[kVRequests] = 1, d[kVResponses] = 1, d[kVExposures] = n;
  out->emplace_back(prefix_ + "v/" + viewer, std::move(d));

  ArmCounters& a = arms_[size_t(arm)];
  std::vector<int64_t> ad(kALatency + kLatencyBuckets, 0);
  const int b = LatencyBucket(f.latency_ms);
  a.latency[size_t(b)]++;
  ad[size_t(kALatency + b)] = 1;
  if (f.degraded) a.degraded++, ad[kADegraded] = 1;
  if (f.fallback) a.fallback++, ad[kAFallback] = 1;
  out->emplace_back(prefix_ + "a/" + std::to_string(arm), std::move(ad));
  unresolved_.responses.emplace_back(arm, f.results);
}

ExperimentMetrics::Unresolved ExperimentMetrics::TakeUnresolved() {
  Unresolved out;
  out.responses.swap(unresolved_.responses);
  return out;
}

void ExperimentMetrics::AddResolvedCounts(int arm, const std::unordered_map<uint32_t, int64_t>& creators,
                                          const std::unordered_map<std::string, int64_t>& cohorts) {
  if (arm < 0 || size_t(arm) >= arms_.size()) return;
  ArmCounters& a = arms_[size_t(arm)];
  for (const auto& [c, n] : creators) a.creator_exposures[c] += n;
  if (!creators.empty() && a.dirty_creators.empty()) a.dirty_creators.push_back(creators.begin()->first);
  for (const auto& [c, n] : cohorts) {
    a.cohort_exposures[c] += n;
    a.dirty_cohorts.push_back(c);
  }
}

ExperimentMetrics::Dirty ExperimentMetrics::TakeDirty() {
  Dirty d;
  for (ArmCounters& a : arms_) {
    d.creators.emplace_back().swap(a.dirty_creators);
    d.cohorts.emplace_back().swap(a.dirty_cohorts);
  }
  return d;
}

void ExperimentMetrics::Dirty::Deduplicate() {
  for (auto& v : creators) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
  }
  for (auto& v : cohorts) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
  }
}

std::vector<CounterDelta> ExperimentMetrics::Totals(const Dirty& d) const {
  std::vector<CounterDelta> out;
  for (size_t arm = 0; arm < arms_.size() && arm < d.creators.size(); ++arm) {
    const ArmCounters& a = arms_[arm];
    const std::string arm_key = std::to_string(arm);
    // Every creator's total of the arm in one value (creator, count, creator, count, ...).
    if (!d.creators[arm].empty()) {
      std::vector<int64_t> pairs;
      pairs.reserve(a.creator_exposures.size() * 2);
      for (const auto& [c, n] : a.creator_exposures) pairs.push_back(int64_t(c)), pairs.push_back(n);
      out.emplace_back(prefix_ + "x/" + arm_key, std::move(pairs));
    }
    for (const auto& c : d.cohorts[arm])
      if (auto it = a.cohort_exposures.find(c); it != a.cohort_exposures.end())
        out.emplace_back(prefix_ + "h/" + arm_key + "/" + c, std::vector<int64_t>{it->second});
  }
  return out;
}

void ExperimentMetrics::OnError(const std::string& viewer, int arm, int64_t covariate,
                                std::vector<CounterDelta>* out) {
  if (arm < 0 || size_t(arm) >= arms_.size()) return;
  std::vector<int64_t> d;
  ViewerCounts& v = Touch(viewer, arm, covariate, &d);
  v.requests++, v.errors++;
  d[kVRequests] = 1, d[kVErrors] = 1;
  out->emplace_back(prefix_ + "v/" + viewer, std::move(d));
}

void ExperimentMetrics::OnOutcome(const std::string& viewer, int arm, bool click, bool hide,
                                  std::vector<CounterDelta>* out) {
  auto it = viewers_.find(viewer);
  if (it == viewers_.end() || it->second.arm != arm || (!click && !hide)) return;
  std::vector<int64_t> d(kVFields, 0);
  if (click) it->second.clicks++, d[kVClicks] = 1;
  if (hide) it->second.hides++, d[kVHides] = 1;
  out->emplace_back(prefix_ + "v/" + viewer, std::move(d));
}

void ExperimentMetrics::LoadCounter(std::string_view key, const std::vector<int64_t>& v) {
  auto at = [&](size_t i) { return i < v.size() ? v[i] : 0; };
  if (key.rfind("v/", 0) == 0) {
    const int arm = int(at(kVArm)) - 1;
    if (arm < 0 || size_t(arm) >= arms_.size()) return;
    ViewerCounts& c = viewers_[std::string(key.substr(2))];
    c = {arm, at(kVRequests), at(kVResponses), at(kVErrors), at(kVExposures), at(kVClicks), at(kVHides),
         at(kVCovariate)};
    return;
  }
  if (key.size() < 3 || key[1] != '/') return;
  const char kind = key[0];
  std::string_view rest = key.substr(2);
  const size_t slash = rest.find('/');
  const int arm = std::atoi(std::string(rest.substr(0, slash)).c_str());
  if (arm < 0 || size_t(arm) >= arms_.size()) return;
  ArmCounters& a = arms_[size_t(arm)];
  if (kind == 'a') {
    a.degraded = at(kADegraded), a.fallback = at(kAFallback);
    for (int b = 0; b < kLatencyBuckets; ++b) a.latency[size_t(b)] = at(size_t(kALatency + b));
  } else if (kind == 'x') {
    for (size_t i = 0; i + 1 < v.size(); i += 2) a.creator_exposures[uint32_t(v[i])] = v[i + 1];
  } else if (slash != std::string_view::npos && kind == 'h') {
    a.cohort_exposures[std::string(rest.substr(slash + 1))] = at(0);
  }
}

const ViewerCounts* ExperimentMetrics::Viewer(const std::string& viewer) const {
  auto it = viewers_.find(viewer);
  return it == viewers_.end() ? nullptr : &it->second;
}

std::vector<ArmFigures> ExperimentMetrics::Figures() const {
  std::vector<ArmFigures> out(arms_.size());
  for (const auto& [id, v] : viewers_) {
    ArmFigures& f = out[size_t(v.arm)];
    f.viewers++;
    f.requests += v.requests, f.responses += v.responses, f.errors += v.errors;
    f.exposures += v.exposures, f.clicks += v.clicks, f.hides += v.hides;
    const double z = double(v.covariate);
    if (v.exposures > 0) {
      f.ctr.Add(double(v.clicks), double(v.exposures), z);
      f.hide.Add(double(v.hides), double(v.exposures), z);
      f.ctr_per_viewer += double(v.clicks) / double(v.exposures);
      f.hide_rate_per_viewer += double(v.hides) / double(v.exposures);
    }
    if (v.requests > 0) f.error.Add(double(v.errors), double(v.requests), z);
  }
  for (size_t a = 0; a < arms_.size(); ++a) {
    if (out[a].ctr.n > 0) {
      out[a].ctr_per_viewer /= out[a].ctr.n;
      out[a].hide_rate_per_viewer /= out[a].ctr.n;
    }
    if (out[a].responses > 0) {
      out[a].degraded_share = double(arms_[a].degraded) / double(out[a].responses);
      out[a].fallback_share = double(arms_[a].fallback) / double(out[a].responses);
    }
    out[a].latency_p50 = Percentile(arms_[a].latency, 0.5);
    out[a].latency_p99 = Percentile(arms_[a].latency, 0.99);
    std::vector<double> exposures;
    exposures.reserve(arms_[a].creator_exposures.size());
    for (const auto& [c, n] : arms_[a].creator_exposures) exposures.push_back(double(n));
    out[a].exposure_gini = Gini(std::move(exposures));
  }
  return out;
}

std::vector<std::unordered_map<std::string, double>> ExperimentMetrics::CohortShares() const {
  std::vector<std::unordered_map<std::string, double>> out(arms_.size());
  for (size_t a = 0; a < arms_.size(); ++a) {
    double total = 0;
    for (const auto& [c, n] : arms_[a].cohort_exposures) total += double(n);
    for (const auto& [c, n] : arms_[a].cohort_exposures) out[a][c.empty() ? "(none)" : c] = total > 0 ? n / total : 0;
  }
  return out;
}

}  // namespace affinity
