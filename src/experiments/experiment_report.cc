#include "experiments/experiment_report.h"

#include <simdjson.h>

#include <algorithm>
#include <cmath>

#include "base/json_writer.h"
#include "experiments/stats.h"

namespace affinity {
namespace {

// The mSPRT's mixture scale for a rate metric: a share of the two arms' pooled rate.
double Tau(const RatioSums& a, const RatioSums& b, double relative) {
  const double y = a.sy + b.sy;
  const double pooled = y > 0 ? (a.sx + b.sx) / y : 0;
  return relative * pooled;
}

double Lower(std::map<std::string, double>* m, const std::string& key, double p) {
  auto [it, inserted] = m->try_emplace(key, p);
  if (!inserted) it->second = std::min(it->second, p);
  return it->second;
}

void Interval(JsonWriter& w, const char* key, double lo, double hi) {
  w.Key(key).BeginArray().Double(lo).Double(hi).EndArray();
}

void WriteArm(JsonWriter& w, const Experiment& def, size_t i, const ReportInputs& in, double z) {
  const ExperimentArm& arm = def.arms[i];
  const ArmFigures& f = in.figures[i];
  w.BeginObject();
  w.Key("name").String(arm.name).Key("weight").Double(arm.weight);
  w.Key("status").String(arm.stopped || !def.running() ? "stopped" : "running");
  if (!arm.stopped_reason.empty()) w.Key("stopped_reason").String(arm.stopped_reason);
  if (i < in.model_error.size() && !in.model_error[i].empty()) w.Key("model_error").String(in.model_error[i]);
  w.Key("viewers").Int(f.viewers).Key("responses").Int(f.responses).Key("errors").Int(f.errors);
  w.Key("error_rate").Double(f.requests ? double(f.errors) / double(f.requests) : 0);
  w.Key("exposures").Int(f.exposures).Key("clicks").Int(f.clicks);
  const Estimate ctr = DeltaRatio(f.ctr), hide = DeltaRatio(f.hide);
  w.Key("ctr").Double(ctr.value);
  Interval(w, "ctr_ci", ctr.value - z * std::sqrt(ctr.variance), ctr.value + z * std::sqrt(ctr.variance));
  w.Key("hides").Int(f.hides).Key("hide_rate").Double(hide.value);
  Interval(w, "hide_rate_ci", hide.value - z * std::sqrt(hide.variance), hide.value + z * std::sqrt(hide.variance));
  w.Key("ctr_per_viewer").Double(f.ctr_per_viewer).Key("hide_rate_per_viewer").Double(f.hide_rate_per_viewer);
  w.Key("latency_ms").BeginObject().Key("p50").Double(f.latency_p50).Key("p99").Double(f.latency_p99).EndObject();
  w.Key("degraded_share").Double(f.degraded_share).Key("fallback_share").Double(f.fallback_share);
  w.Key("exposure_gini").Double(f.exposure_gini);
  w.Key("cohort_exposure_share").BeginObject();
  if (i < in.cohort_shares.size()) {
    std::map<std::string, double> sorted(in.cohort_shares[i].begin(), in.cohort_shares[i].end());
    for (const auto& [c, share] : sorted) w.Key(c).Double(share);
  }
  w.EndObject();
  w.EndObject();
}

struct Row {
  size_t arm;
  const char* metric;
  Comparison raw, cuped;
  double theta = 0;
  double avp = 1;  // running minimum
};

}  // namespace

std::string BuildReportJson(const Experiment& def, const ReportInputs& in, const ReportOptions& options,
                            std::map<std::string, double>* running_min) {
  const double z = NormalQuantile(1 - options.alpha / 2);
  std::vector<double> viewers, weights;
  for (size_t i = 0; i < def.arms.size(); ++i)
    if (!def.arms[i].stopped) {
      viewers.push_back(double(in.figures[i].viewers));
      weights.push_back(def.arms[i].weight);
    }
  std::vector<Row> rows;
  for (size_t i = 1; i < def.arms.size(); ++i) {
    for (const char* metric : {"ctr", "hide_rate"}) {
      const bool is_ctr = std::string_view(metric) == "ctr";
      const RatioSums& t = is_ctr ? in.figures[i].ctr : in.figures[i].hide;
      const RatioSums& c = is_ctr ? in.figures[0].ctr : in.figures[0].hide;
      Row r{i, metric, {}, {}};
      const double tau = Tau(t, c, options.tau_relative);
      r.raw = Compare(DeltaRatio(t), DeltaRatio(c), tau, options.alpha);
      r.theta = CupedTheta({c, t});
      const double n = c.n + t.n;
      const double mu_z = n > 0 ? (c.sz + t.sz) / n : 0;
      r.cuped = Compare(CupedRatio(t, r.theta, mu_z), CupedRatio(c, r.theta, mu_z), tau, options.alpha);
      r.avp = Lower(running_min, def.arms[i].name + "/" + metric, r.raw.always_valid_p);
      rows.push_back(r);
    }
  }
  std::vector<double> p, avp;
  for (const Row& r : rows) p.push_back(r.raw.p_value), avp.push_back(r.avp);
  const std::vector<double> p_adj = HolmAdjust(p), avp_adj = HolmAdjust(avp);

  JsonWriter w;
  w.BeginObject();
  w.Key("id").String(def.id).Key("status").String(ExperimentStatusName(def.status));
  w.Key("kind").String(ExperimentKindName(def.kind));
  if (!def.stopped_reason.empty()) w.Key("stopped_reason").String(def.stopped_reason);
  w.Key("created_ms").Int(def.created_ms);
  w.Key("arms").BeginArray();
  for (size_t i = 0; i < def.arms.size(); ++i) WriteArm(w, def, i, in, z);
  w.EndArray();
  w.Key("srm_p_value").Double(SrmPValue(viewers, weights));
  w.Key("comparisons").BeginArray();
  for (size_t k = 0; k < rows.size(); ++k) {
    const Row& r = rows[k];
    w.BeginObject().Key("arm").String(def.arms[r.arm].name).Key("vs").String(def.arms[0].name);
    w.Key("metric").String(r.metric).Key("lift").Double(r.raw.lift);
    Interval(w, "lift_ci", r.raw.lift_lo, r.raw.lift_hi);
    w.Key("difference").Double(r.raw.diff).Key("difference_se").Double(r.raw.diff_se);
    w.Key("p_value").Double(r.raw.p_value).Key("always_valid_p_value").Double(r.avp);
    w.Key("p_value_adjusted").Double(p_adj[k]).Key("always_valid_p_value_adjusted").Double(avp_adj[k]);
    w.Key("cuped").BeginObject().Key("theta").Double(r.theta).Key("lift").Double(r.cuped.lift);
    Interval(w, "lift_ci", r.cuped.lift_lo, r.cuped.lift_hi);
    w.Key("p_value").Double(r.cuped.p_value).EndObject();
    w.EndObject();
  }
  w.EndArray();
  w.Key("method").BeginObject();
  w.Key("unit").String("viewer");
  w.Key("variance").String("delta method over viewers (rates per exposure are ratios of per-viewer sums)");
  w.Key("p_value").String("two-sided z test, fixed horizon: valid read once, at a sample size fixed in advance");
  w.Key("always_valid_p_value")
      .String("mSPRT, normal mixture over the difference; running minimum: valid however often it is read");
  w.Key("tau_relative").Double(options.tau_relative);
  w.Key("cuped_covariate").String("the viewer's events before their first request in the experiment");
  w.Key("correction").String("holm, over every comparison of the report");
  w.Key("srm").String("chi-square goodness of fit of viewers per running arm against the weights");
  w.EndObject();
  w.EndObject();
  return w.Release();
}

std::optional<std::string> GuardrailBreach(const Experiment& def, const std::vector<ArmFigures>& figures, size_t arm,
                            const GuardrailOptions& options, std::map<std::string, double>* running_min) {
  const ArmFigures &t = figures[arm], &c = figures[0];
  char buf[256];
  for (const Guardrail& g : def.guardrails) {
    const double m = 1 + g.max_relative_increase;
    const std::string metric(GuardrailMetricName(g.metric));
    if (g.metric == GuardrailMetric::kHideRate || g.metric == GuardrailMetric::kErrorRate) {
      const RatioSums& ts = g.metric == GuardrailMetric::kHideRate ? t.hide : t.error;
      const RatioSums& cs = g.metric == GuardrailMetric::kHideRate ? c.hide : c.error;
      const Estimate te = DeltaRatio(ts), ce = DeltaRatio(cs);
      const double diff = te.value - m * ce.value;
      const double var = te.variance + m * m * ce.variance;
      // One-sided: only evidence of an increase lowers the running minimum.
      if (!(diff > 0)) continue;
      const double p = Lower(running_min, def.arms[arm].name + "/guardrail/" + metric,
                             MsprtPValue(diff, var, Tau(ts, cs, options.tau_relative)));
      if (p < options.alpha) {
        std::snprintf(buf, sizeof buf, "%s %.4g against the control's %.4g exceeds the allowed increase of %.0f%% "
                      "(always-valid p = %.3g < %.3g)", metric.c_str(), te.value, ce.value,
                      g.max_relative_increase * 100, p, options.alpha);
        return std::string(buf);
      }
      continue;
    }
    if (t.responses < options.min_responses || c.responses < options.min_responses) continue;
    const double tv = g.metric == GuardrailMetric::kLatencyP99Ms ? t.latency_p99 : t.exposure_gini;
    const double cv = g.metric == GuardrailMetric::kLatencyP99Ms ? c.latency_p99 : c.exposure_gini;
    if (cv > 0 && tv > m * cv) {
      std::snprintf(buf, sizeof buf, "%s %.4g against the control's %.4g exceeds the allowed increase of %.0f%% "
                    "(%lld and %lld responses)", metric.c_str(), tv, cv, g.max_relative_increase * 100,
                    (long long)t.responses, (long long)c.responses);
      return std::string(buf);
    }
  }
  return std::nullopt;
}

CanaryVerdict JudgeCanary(const Experiment& def, const std::vector<ArmFigures>& figures, const CanaryOptions& options,
                          std::map<std::string, double>* running_min) {
  CanaryVerdict v;
  if (def.arms.size() < 2 || figures.size() < 2) {
    v.action = CanaryVerdict::kRollBack;
    v.why = "its experiment has no canary arm";
    return v;
  }
  if (def.arms[1].stopped) {
    v.action = CanaryVerdict::kRollBack;
    v.why = "guardrail breached: " + def.arms[1].stopped_reason;
    return v;
  }
  const ArmFigures &t = figures[1], &c = figures[0];
  const double tau = Tau(t.ctr, c.ctr, options.tau_relative);
  const Comparison cmp = Compare(DeltaRatio(t.ctr), DeltaRatio(c.ctr), tau, options.alpha);
  char buf[512];
  auto describe = [&](const char* verdict, const char* test, double p) {
    std::snprintf(buf, sizeof buf,
                  "%s: CTR %.4g against the control's %.4g, lift %+.1f%% [%+.1f%%, %+.1f%%], %s p = %.3g, over %lld "
                  "canary and %lld control viewers",
                  verdict, DeltaRatio(t.ctr).value, DeltaRatio(c.ctr).value, cmp.lift * 100, cmp.lift_lo * 100,
                  cmp.lift_hi * 100, test, p, (long long)t.viewers, (long long)c.viewers);
    return std::string(buf);
  };
  // One-sided: only evidence that the canary is worse lowers this running minimum.
  double avp = 1;
  if (cmp.diff < 0) avp = MsprtPValue(cmp.diff, cmp.diff_se * cmp.diff_se, tau);
  avp = Lower(running_min, "canary/ctr_lower", avp);
  if (avp < options.alpha) {
    v.action = CanaryVerdict::kRollBack;
    v.why = describe("CTR significantly lower", "always-valid", avp);
    return v;
  }
  if (t.viewers < options.min_viewers) {
    std::snprintf(buf, sizeof buf, "%lld of %lld canary viewers so far", (long long)t.viewers,
                  (long long)options.min_viewers);
    v.why = buf;
    return v;
  }
  if (cmp.diff < 0 && cmp.p_value < options.alpha) {
    v.action = CanaryVerdict::kRollBack;
    v.why = describe("CTR significantly lower", "fixed-horizon", cmp.p_value);
    return v;
  }
  v.action = CanaryVerdict::kPromote;
  v.why = describe("no guardrail breached and CTR not significantly lower", "fixed-horizon", cmp.p_value);
  return v;
}

std::string RunningMinimumsJson(const std::map<std::string, double>& m) {
  JsonWriter w;
  w.BeginObject();
  for (const auto& [k, v] : m) w.Key(k).Double(v);
  w.EndObject();
  return w.Release();
}

void ReadRunningMinimums(std::string_view json, std::map<std::string, double>* out) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::object o;
  if (parser.parse(json.data(), json.size()).get(doc) || doc.get(o)) return;
  for (auto field : o) {
    double v;
    if (!field.value.get(v)) (*out)[std::string(field.key)] = v;
  }
}

}  // namespace affinity
