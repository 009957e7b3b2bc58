#include "experiments/stats.h"

#include <algorithm>
#include <boost/math/distributions/chi_squared.hpp>
#include <boost/math/distributions/normal.hpp>
#include <cmath>
#include <numeric>

namespace affinity {
namespace {

// Sample (co)variance from sums: (s_ab − s_a s_b / n) / (n − 1).
double Cov(double n, double sa, double sb, double sab) { return n > 1 ? (sab - sa * sb / n) / (n - 1) : 0; }

}  // namespace

double NormalTwoSidedP(double z) {
  if (!std::isfinite(z)) return 0;
  return std::min(1.0, std::erfc(std::abs(z) / std::sqrt(2.0)));
}

double NormalQuantile(double p) { return boost::math::quantile(boost::math::normal(), p); }

Estimate DeltaRatio(const RatioSums& s) {
  Estimate e;
  if (s.n < 1 || s.sy <= 0) return e;
  const double mx = s.sx / s.n, my = s.sy / s.n;
  e.value = s.sx / s.sy;
  if (s.n < 2) return e;
  const double vx = Cov(s.n, s.sx, s.sx, s.sxx), vy = Cov(s.n, s.sy, s.sy, s.syy), cxy = Cov(s.n, s.sx, s.sy, s.sxy);
  const double v = (vx / (my * my) - 2 * mx * cxy / (my * my * my) + mx * mx * vy / (my * my * my * my)) / s.n;
  e.variance = std::max(0.0, v);
  return e;
}

double CupedTheta(const std::vector<RatioSums>& arms) {
  double cov = 0, var = 0;
  for (const RatioSums& s : arms) {
    if (s.n < 2 || s.sy <= 0) continue;
    const double r = s.sx / s.sy, my = s.sy / s.n;
    // Cov(L, z) with L = (x − r y) / ȳ.
    const double c = (Cov(s.n, s.sx, s.sz, s.sxz) - r * Cov(s.n, s.sy, s.sz, s.syz)) / my;
    cov += (s.n - 1) * c;
    var += (s.n - 1) * Cov(s.n, s.sz, s.sz, s.szz);
  }
  return var > 0 ? cov / var : 0;
}

Estimate CupedRatio(const RatioSums& s, double theta, double mu_z) {
  Estimate e = DeltaRatio(s);
  if (s.n < 2 || s.sy <= 0) return e;
  const double r = e.value, my = s.sy / s.n;
  const double var_l = e.variance * s.n;
  const double cov_lz = (Cov(s.n, s.sx, s.sz, s.sxz) - r * Cov(s.n, s.sy, s.sz, s.syz)) / my;
  const double var_z = Cov(s.n, s.sz, s.sz, s.szz);
  e.value = r - theta * (s.sz / s.n - mu_z);
  e.variance = std::max(0.0, (var_l - 2 * theta * cov_lz + theta * theta * var_z) / s.n);
  return e;
}

double MsprtPValue(double diff, double var, double tau) {
  if (!(var > 0) || !(tau > 0)) return 1;
  const double t2 = tau * tau;
  const double log_lambda = 0.5 * std::log(var / (var + t2)) + t2 * diff * diff / (2 * var * (var + t2));
  return std::min(1.0, std::exp(-log_lambda));
}

Comparison Compare(const Estimate& t, const Estimate& c, double tau, double alpha) {
  Comparison out;
  out.diff = t.value - c.value;
  const double var = t.variance + c.variance;
  out.diff_se = std::sqrt(var);
  out.p_value = var > 0 ? NormalTwoSidedP(out.diff / out.diff_se) : 1;
  out.always_valid_p = MsprtPValue(out.diff, var, tau);
  if (c.value > 0) {
    out.lift = t.value / c.value - 1;
    // Var(t/c) ≈ Var(t)/c² + t² Var(c)/c⁴ (independent arms).
    const double lv = t.variance / (c.value * c.value) + t.value * t.value * c.variance / std::pow(c.value, 4);
    const double z = NormalQuantile(1 - alpha / 2);
    out.lift_lo = out.lift - z * std::sqrt(lv);
    out.lift_hi = out.lift + z * std::sqrt(lv);
  }
  return out;
}

double SrmPValue(const std::vector<double>& observed, const std::vector<double>& weights) {
  if (observed.size() < 2 || observed.size() != weights.size()) return 1;
  const double n = std::accumulate(observed.begin(), observed.end(), 0.0);
  const double w = std::accumulate(weights.begin(), weights.end(), 0.0);
  if (n <= 0 || w <= 0) return 1;
  double chi2 = 0;
  for (size_t i = 0; i < observed.size(); ++i) {
    const double expected = n * weights[i] / w;
    if (expected > 0) chi2 += (observed[i] - expected) * (observed[i] - expected) / expected;
  }
  boost::math::chi_squared dist(double(observed.size() - 1));
  return boost::math::cdf(boost::math::complement(dist, chi2));
}

std::vector<double> HolmAdjust(const std::vector<double>& p) {
  const size_t m = p.size();
  std::vector<size_t> order(m);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] < p[b]; });
  std::vector<double> out(m);
  double running = 0;
  for (size_t i = 0; i < m; ++i) {
    running = std::max(running, std::min(1.0, double(m - i) * p[order[i]]));
    out[order[i]] = running;
  }
  return out;
}


}  // namespace affinity
