// The HTML evaluation report: one self-contained file, inline SVG, no scripts.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "eval/evaluator.h"

namespace affinity {
namespace {

std::string Fmt(double v, int digits = 4) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else out += c;
  }
  return out;
}

constexpr int W = 560, H = 300, L = 60, R = 20, T = 20, B = 50;

// A y axis that ends on a round value: the top and four ticks at 1, 2, 2.5 or 5
// times a power of ten (0.05, 0.10, ... rather than 0.107, 0.213, ...).
struct Scale {
  double top, step;
  int digits;
};
Scale NiceScale(double max) {
  if (!(max > 0)) return {1, 0.25, 2};
  const double raw = max / 4, mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10 * mag;
  for (double m : {1.0, 2.0, 2.5, 5.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  const int digits = std::max(0, int(-std::floor(std::log10(step) + 1e-9)) + (step / mag == 2.5 ? 1 : 0));
  return {step * std::ceil(max / step - 1e-9), step, digits};
}

std::string Axes(const std::string& xlabel, const std::string& ylabel, double max) {
  const Scale sc = NiceScale(max);
  const double ymax = sc.top;
  std::string s = "<line x1='" + std::to_string(L) + "' y1='" + std::to_string(H - B) + "' x2='" + std::to_string(W - R) +
                  "' y2='" + std::to_string(H - B) + "' stroke='#333'/>";
  s += "<line x1='" + std::to_string(L) + "' y1='" + std::to_string(T) + "' x2='" + std::to_string(L) + "' y2='" +
       std::to_string(H - B) + "' stroke='#333'/>";
  const int ticks = int(std::lround(ymax / sc.step));
  for (int i = 0; i <= ticks; ++i) {
    double v = sc.step * i;
    int y = H - B - int((H - B - T) * v / ymax);
    s += "<text x='" + std::to_string(L - 6) + "' y='" + std::to_string(y + 4) + "' font-size='11' text-anchor='end'>" +
         Fmt(v, sc.digits) + "</text>";
    s += "<line x1='" + std::to_string(L) + "' y1='" + std::to_string(y) + "' x2='" + std::to_string(W - R) + "' y2='" +
         std::to_string(y) + "' stroke='#eee'/>";
  }
  s += "<text x='" + std::to_string((L + W - R) / 2) + "' y='" + std::to_string(H - 10) +
       "' font-size='12' text-anchor='middle'>" + xlabel + "</text>";
  s += "<text x='14' y='" + std::to_string((T + H - B) / 2) + "' font-size='12' text-anchor='middle' transform='rotate(-90 14 " +
       std::to_string((T + H - B) / 2) + ")'>" + ylabel + "</text>";
  return s;
}

std::string LinePlot(const std::vector<std::pair<std::string, std::vector<std::pair<double, double>>>>& series,
                     const std::vector<std::string>& xticks, const std::string& xlabel, const std::string& ylabel) {
  static const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd"};
  double ymax = 0;
  size_t n = 0;
  for (auto& [name, pts] : series)
    for (auto& [x, y] : pts) {
      ymax = std::max(ymax, y);
      n = std::max(n, pts.size());
    }
  ymax = NiceScale(ymax).top;
  std::string s = "<svg xmlns='http://www.w3.org/2000/svg' width='" + std::to_string(W) + "' height='" + std::to_string(H) + "'>";
  s += Axes(xlabel, ylabel, ymax);
  auto px = [&](size_t i) { return L + 20 + int((W - L - R - 40) * (n > 1 ? double(i) / double(n - 1) : 0.5)); };
  auto py = [&](double y) { return H - B - int((H - B - T) * y / ymax); };
  for (size_t i = 0; i < xticks.size(); ++i)
    s += "<text x='" + std::to_string(px(i)) + "' y='" + std::to_string(H - B + 16) + "' font-size='11' text-anchor='middle'>" +
         xticks[i] + "</text>";
  for (size_t si = 0; si < series.size(); ++si) {
    const auto& pts = series[si].second;
    std::string path;
    for (size_t i = 0; i < pts.size(); ++i)
      path += (i ? " L" : "M") + std::to_string(px(i)) + " " + std::to_string(py(pts[i].second));
    s += "<path d='" + path + "' fill='none' stroke='" + kColors[si % 4] + "' stroke-width='2'/>";
    for (size_t i = 0; i < pts.size(); ++i)
      s += "<circle cx='" + std::to_string(px(i)) + "' cy='" + std::to_string(py(pts[i].second)) + "' r='3' fill='" +
           kColors[si % 4] + "'/>";
    s += "<text x='" + std::to_string(W - R - 90) + "' y='" + std::to_string(T + 14 + 16 * int(si)) + "' font-size='12' fill='" +
         kColors[si % 4] + "'>" + series[si].first + "</text>";
  }
  return s + "</svg>";
}

std::string BarPlot(const std::vector<std::pair<std::string, std::vector<double>>>& groups,
                    const std::vector<std::string>& legend, const std::string& ylabel) {
  static const char* kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c"};
  double ymax = 0;
  for (auto& [name, vals] : groups)
    for (double v : vals) ymax = std::max(ymax, v);
  ymax = NiceScale(ymax).top;
  std::string s = "<svg xmlns='http://www.w3.org/2000/svg' width='" + std::to_string(W) + "' height='" + std::to_string(H) + "'>";
  s += Axes("", ylabel, ymax);
  const double gw = double(W - L - R) / double(std::max<size_t>(1, groups.size()));
  for (size_t g = 0; g < groups.size(); ++g) {
    const auto& vals = groups[g].second;
    double bw = gw * 0.8 / double(std::max<size_t>(1, vals.size()));
    for (size_t v = 0; v < vals.size(); ++v) {
      int h = int((H - B - T) * vals[v] / ymax);
      int x = L + int(gw * double(g) + gw * 0.1 + bw * double(v));
      s += "<rect x='" + std::to_string(x) + "' y='" + std::to_string(H - B - h) + "' width='" + std::to_string(int(bw) - 1) +
           "' height='" + std::to_string(h) + "' fill='" + kColors[v % 3] + "'><title>" + Fmt(vals[v]) + "</title></rect>";
    }
    s += "<text x='" + std::to_string(L + int(gw * (double(g) + 0.5))) + "' y='" + std::to_string(H - B + 16) +
         "' font-size='10' text-anchor='middle'>" + Escape(groups[g].first) + "</text>";
  }
  for (size_t i = 0; i < legend.size(); ++i)
    s += "<text x='" + std::to_string(W - R - 150) + "' y='" + std::to_string(T + 14 + 16 * int(i)) + "' font-size='12' fill='" +
         kColors[i % 3] + "'>" + Escape(legend[i]) + "</text>";
  return s + "</svg>";
}

}  // namespace

std::string EvalReportHtml(const EvalResult& r) {
  std::string h = "<!doctype html><html><head><meta charset='utf-8'><title>affinity evaluation</title><style>"
                  "body{font-family:sans-serif;max-width:1200px;margin:24px auto;color:#222}"
                  "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}"
                  "th{background:#f4f4f4}.plots{display:flex;flex-wrap:wrap;gap:16px}</style></head><body>";
  h += "<h1>affinity offline evaluation</h1>";
  h += "<p>dataset <code>" + Escape(r.dataset) + "</code>, ranker <code>" + Escape(r.ranker) + "</code>, " +
       std::to_string(r.users) + " test users, full ranking with training items excluded, through the serving path. "
       "Build " + Fmt(r.build_seconds, 1) + " s, ranking " + Fmt(r.rank_seconds, 1) + " s.</p>";
  h += "<table><tr><th>run</th><th></th></tr>";
  for (const auto& [key, value] : r.run_info)
    h += "<tr><td>" + Escape(key) + "</td><td style='text-align:left'><code>" + Escape(value) + "</code></td></tr>";
  h += "</table>";
  h += "<table><tr><th>k</th><th>recall</th><th>NDCG</th><th>precision</th><th>MAP</th><th>hit rate</th></tr>";
  for (const auto& [k, m] : r.curve)
    h += "<tr><td>" + std::to_string(k) + "</td><td>" + Fmt(m.recall) + "</td><td>" + Fmt(m.ndcg) + "</td><td>" +
         Fmt(m.precision) + "</td><td>" + Fmt(m.ap) + "</td><td>" + Fmt(m.hit) + "</td></tr>";
  h += "</table><h3>Beside baselines on the same split (k = " + std::to_string(r.k) +
       ")</h3><table><tr><th>method</th><th>recall</th><th>NDCG</th><th>precision</th><th>hit rate</th></tr>";
  auto row = [&](const std::string& name, const UserMetrics& m) {
    h += "<tr><td>" + Escape(name) + "</td><td>" + Fmt(m.recall) + "</td><td>" + Fmt(m.ndcg) + "</td><td>" +
         Fmt(m.precision) + "</td><td>" + Fmt(m.hit) + "</td></tr>";
  };
  row("affinity (" + r.ranker + ")", r.at_k);
  for (const auto& [name, m] : r.baselines) row(name, m);
  if (!r.published.empty()) {
    h += "</table><h3>Published results on this split (recall@20, NDCG@20, as their papers report them)</h3>"
         "<table><tr><th>method</th><th>recall</th><th>NDCG</th></tr>";
    for (const auto& p : r.published)
      h += "<tr><td>" + Escape(p.method) + "</td><td>" + Fmt(p.recall) + "</td><td>" + Fmt(p.ndcg) + "</td></tr>";
  }
  h += "</table><p>coverage@" + std::to_string(r.k) + " " + Fmt(r.coverage) + "; popularity bias (mean popularity percentile of "
       "recommendations) " + Fmt(r.popularity_bias) + "</p><div class='plots'>";
  std::vector<std::pair<double, double>> rec, ndcg;
  std::vector<std::string> ticks;
  for (const auto& [k, m] : r.curve) {
    rec.push_back({double(k), m.recall});
    ndcg.push_back({double(k), m.ndcg});
    ticks.push_back(std::to_string(k));
  }
  h += "<div><h3>Metric vs k</h3>" + LinePlot({{"recall", rec}, {"NDCG", ndcg}}, ticks, "k", "metric") + "</div>";
  std::vector<std::pair<std::string, std::vector<double>>> deciles;
  for (size_t i = 0; i < r.activity_deciles.size(); ++i)
    deciles.push_back({std::to_string(i + 1), {r.activity_deciles[i].recall, r.activity_deciles[i].ndcg}});
  h += "<div><h3>By viewer activity decile (1 = least active)</h3>" +
       BarPlot(deciles, {"recall@" + std::to_string(r.k), "NDCG@" + std::to_string(r.k)}, "metric") + "</div>";
  std::vector<std::pair<double, double>> expo, cat;
  std::vector<std::string> dticks;
  for (size_t i = 0; i < r.popularity_curve.size(); ++i) {
    expo.push_back({r.popularity_curve[i].first, r.popularity_curve[i].second});
    cat.push_back({r.popularity_curve[i].first, 0.1});
    dticks.push_back(std::to_string(i + 1));
  }
  h += "<div><h3>Popularity bias: share of recommendations by popularity decile (1 = most popular)</h3>" +
       LinePlot({{"recommendations", expo}, {"catalogue", cat}}, dticks, "popularity decile", "share") + "</div>";
  std::vector<std::pair<std::string, std::vector<double>>> tiers;
  for (const auto& t : r.popularity_tiers) tiers.push_back({t.name.substr(0, t.name.find(' ')), {t.catalogue_share, t.exposure_share, t.recall}});
  h += "<div><h3>Popularity tiers</h3>" + BarPlot(tiers, {"catalogue share", "exposure share", "recall"}, "share") + "</div>";
  h += "</div><h2>Cohorts</h2><table><tr><th>viewer cohort</th><th>users</th><th>recall</th><th>NDCG</th></tr>";
  for (const auto& c : r.activity_deciles)
    h += "<tr><td>" + Escape(c.name) + "</td><td>" + std::to_string(c.users) + "</td><td>" + Fmt(c.recall) + "</td><td>" +
         Fmt(c.ndcg) + "</td></tr>";
  h += "</table><table><tr><th>entity tier</th><th>catalogue share</th><th>exposure share</th><th>recall</th></tr>";
  for (const auto& t : r.popularity_tiers)
    h += "<tr><td>" + Escape(t.name) + "</td><td>" + Fmt(t.catalogue_share) + "</td><td>" + Fmt(t.exposure_share) +
         "</td><td>" + Fmt(t.recall) + "</td></tr>";
  h += "</table><h2>Exposure</h2><p>Gini of recommendation slots over the catalogue: " + Fmt(r.exposure_gini);
  if (!r.creator_tiers.empty()) h += "; over creators: " + Fmt(r.creator_exposure_gini);
  h += " (0 = equal, 1 = all on one).</p>";
  if (!r.creator_tiers.empty()) {
    std::vector<std::pair<std::string, std::vector<double>>> ct;
    for (const auto& t : r.creator_tiers) ct.push_back({t.name.substr(0, t.name.find(" creators")), {t.catalogue_share, t.exposure_share}});
    h += "<div><h3>Creator exposure</h3>" + BarPlot(ct, {"catalogue share", "exposure share"}, "share") + "</div>";
    h += "<table><tr><th>creator tier</th><th>catalogue share</th><th>exposure share</th></tr>";
    for (const auto& t : r.creator_tiers)
      h += "<tr><td>" + Escape(t.name) + "</td><td>" + Fmt(t.catalogue_share) + "</td><td>" + Fmt(t.exposure_share) + "</td></tr>";
    h += "</table>";
  }
  if (!r.viewer_cohorts.empty()) {
    h += "<table><tr><th>viewer cohort (label)</th><th>users</th><th>recall</th><th>NDCG</th><th>tail exposure share</th></tr>";
    for (const auto& c : r.viewer_cohorts)
      h += "<tr><td>" + Escape(c.name) + "</td><td>" + std::to_string(c.users) + "</td><td>" + Fmt(c.recall) + "</td><td>" +
           Fmt(c.ndcg) + "</td><td>" + Fmt(c.tail_share) + "</td></tr>";
    h += "</table>";
  }
  h += "</body></html>";
  return h;
}

}  // namespace affinity
