// The statistics of an experiment report (docs/experiments.md says what each
// assumes). The viewer is the randomisation unit, so a per-exposure rate such
// as CTR is a ratio of two per-viewer sums: its variance comes from the delta
// method over viewers, never from a binomial over exposures (which would treat
// one viewer's exposures as independent and overstate the evidence).
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <vector>

#include "base/gini.h"

namespace affinity {

// Sums over the viewers of one arm: x the numerator (clicks, hides), y the
// denominator (exposures), z a pre-experiment covariate (CUPED).
struct RatioSums {
  double n = 0;
  double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
  double sz = 0, szz = 0, sxz = 0, syz = 0;
  void Add(double x, double y, double z) {
    n += 1;
    sx += x, sy += y, sxx += x * x, syy += y * y, sxy += x * y;
    sz += z, szz += z * z, sxz += x * z, syz += y * z;
  }
};

struct Estimate {
  double value = 0;     // the ratio sx / sy
  double variance = 0;  // of that estimator (0 when it cannot be estimated)
};

// The ratio and its delta-method variance:
// Var(x̄/ȳ) ≈ (s_x² / ȳ² − 2 x̄ s_xy / ȳ³ + x̄² s_y² / ȳ⁴) / n, sample (co)variances over viewers.
Estimate DeltaRatio(const RatioSums& s);

// CUPED for a ratio: the pooled θ = Σ cov(L, z) / Σ var(z) over arms, where
// L_i = (x_i − r y_i) / ȳ is a viewer's linearised contribution to the ratio.
double CupedTheta(const std::vector<RatioSums>& arms);
// The arm's ratio adjusted by θ (z̄ moved to the pooled mean mu_z), with its
// variance (Var(L) − 2θ Cov(L, z) + θ² Var(z)) / n.
Estimate CupedRatio(const RatioSums& s, double theta, double mu_z);

struct Comparison {
  double lift = 0;           // treatment / control − 1
  double lift_lo = 0, lift_hi = 0;  // its confidence interval (delta method)
  double diff = 0;           // treatment − control
  double diff_se = 0;
  double p_value = 1;        // two-sided z test of diff = 0 (fixed horizon)
  double always_valid_p = 1; // 1 / mSPRT likelihood ratio, capped at 1 (before the running minimum)
};
// `tau` is the standard deviation of the mSPRT's normal mixture over the
// difference; alpha sets the interval's level.
Comparison Compare(const Estimate& treatment, const Estimate& control, double tau, double alpha = 0.05);

// mSPRT with a normal mixture N(0, tau²) over the true difference (Johari,
// Pekelis and Walsh, "Always valid inference", 2017): for an estimate `diff`
// with variance `var`, Λ = sqrt(var / (var + τ²)) · exp(τ² diff² / (2 var (var + τ²))).
// Returns min(1, 1/Λ); the running minimum of these over time is the
// always-valid p-value.
double MsprtPValue(double diff, double var, double tau);

// Chi-square goodness of fit of `observed` counts against the expected shares
// `weights` (normalised): the sample-ratio-mismatch p-value; 1 with fewer than
// two cells or no observations.
double SrmPValue(const std::vector<double>& observed, const std::vector<double>& weights);

// Holm's step-down adjustment (family-wise error, no assumption about how the
// comparisons depend on each other), in the input order, capped at 1.
std::vector<double> HolmAdjust(const std::vector<double>& p);


// Two-sided normal p-value of a z statistic, and the normal quantile.
double NormalTwoSidedP(double z);
double NormalQuantile(double p);

}  // namespace affinity
