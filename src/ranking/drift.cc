#include "ranking/drift.h"

#include <simdjson.h>

#include <algorithm>
#include <cmath>

#include "base/json_writer.h"

namespace affinity {

DriftReference DriftReference::Build(const float* inputs, size_t width, const float* scores, size_t rows,
                                     const std::vector<int>& columns, const std::vector<std::string>& names,
                                     size_t max_sample, size_t lists) {
  DriftReference ref;
  ref.rows = rows;
  ref.lists = lists;
  const size_t n = std::min(rows, max_sample);
  auto take = [&](int column) {
    std::vector<float> s;
    s.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      const size_t row = n == rows ? i : size_t(double(i) * double(rows) / double(n));
      const float v = column < 0 ? scores[row] : inputs[row * width + size_t(column)];
      if (std::isfinite(v)) s.push_back(v);  // a logged row that predates the input has none
    }
    std::sort(s.begin(), s.end());
    return s;
  };
  ref.signals.push_back({"score", -1, take(-1)});
  for (int c : columns) ref.signals.push_back({size_t(c) < names.size() ? names[size_t(c)] : std::to_string(c), c, take(c)});
  return ref;
}

std::string DriftReference::ToJson() const {
  JsonWriter w;
  w.BeginObject().Key("format").Int(1).Key("rows").Uint(rows);
  if (lists > 0) w.Key("lists").Uint(lists);
  w.Key("signals").BeginArray();
  for (const auto& s : signals) {
    w.BeginObject().Key("name").String(s.name).Key("input").Int(s.input).Key("sample").BeginArray();
    for (float v : s.sample) w.Double(v);
    w.EndArray().EndObject();
  }
  w.EndArray().EndObject();
  return w.Release();
}

absl::StatusOr<DriftReference> DriftReference::FromJson(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::array signals;
  if (parser.parse(json.data(), json.size()).get(doc) || doc["signals"].get(signals))
    return absl::DataLossError("reference.json is not a drift reference");
  DriftReference ref;
  uint64_t rows = 0;
  if (!doc["rows"].get(rows)) ref.rows = rows;
  uint64_t lists = 0;
  if (!doc["lists"].get(lists)) ref.lists = lists;
  for (auto s : signals) {
    DriftSignal sig;
    std::string_view name;
    int64_t input = -1;
    simdjson::dom::array sample;
    if (s["name"].get(name) || s["input"].get(input) || s["sample"].get(sample))
      return absl::DataLossError("reference.json: a signal lacks name, input or sample");
    sig.name = std::string(name);
    sig.input = int(input);
    for (auto v : sample) {
      double d = 0;
      if (v.get(d)) return absl::DataLossError("reference.json: a sample value is not a number");
      sig.sample.push_back(float(d));
    }
    std::sort(sig.sample.begin(), sig.sample.end());
    ref.signals.push_back(std::move(sig));
  }
  return ref;
}

double PopulationStabilityIndex(const std::vector<float>& reference, const std::vector<float>& current) {
  if (reference.empty() || current.empty()) return 0;
  // Bin edges at the reference's deciles (duplicates merged: a spike is one bin).
  std::vector<float> edges;
  for (int q = 1; q < 10; ++q) {
    const float e = reference[std::min(reference.size() - 1, size_t(double(q) / 10.0 * double(reference.size())))];
    if (edges.empty() || e > edges.back()) edges.push_back(e);
  }
  auto shares = [&](const std::vector<float>& values) {
    std::vector<double> counts(edges.size() + 1, 0);
    for (float v : values) counts[size_t(std::upper_bound(edges.begin(), edges.end(), v) - edges.begin())] += 1;
    for (double& c : counts) c = std::max(1e-4, c / double(values.size()));
    return counts;
  };
  const std::vector<double> r = shares(reference), c = shares(current);
  double psi = 0;
  for (size_t i = 0; i < r.size(); ++i) psi += (c[i] - r[i]) * std::log(c[i] / r[i]);
  return psi;
}

double KsStatistic(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.empty() || b.empty()) return 0;
  size_t i = 0, j = 0;
  double d = 0;
  while (i < a.size() && j < b.size()) {
    const float x = std::min(a[i], b[j]);
    while (i < a.size() && a[i] <= x) ++i;
    while (j < b.size() && b[j] <= x) ++j;
    d = std::max(d, std::fabs(double(i) / double(a.size()) - double(j) / double(b.size())));
  }
  return d;
}

double KsPValue(double d, size_t n, size_t m) {
  if (n == 0 || m == 0) return 1;
  const double ne = double(n) * double(m) / double(n + m);
  const double lambda = (std::sqrt(ne) + 0.12 + 0.11 / std::sqrt(ne)) * d;
  if (lambda < 0.2) return 1;
  double sum = 0, sign = 1;
  for (int k = 1; k <= 100; ++k) {
    const double term = sign * std::exp(-2.0 * k * k * lambda * lambda);
    sum += term;
    if (std::fabs(term) < 1e-12) break;
    sign = -sign;
  }
  return std::clamp(2 * sum, 0.0, 1.0);
}

void DriftMonitor::Observe(const float* inputs, size_t width, const float* scores, size_t rows) {
  std::unique_lock<std::mutex> lock(mu_, std::try_to_lock);
  if (!lock.owns_lock()) return;  // never wait on the query path
  if (window_.empty()) {
    window_.assign(reference_.signals.size(), std::vector<float>(kWindow, 0.f));
    list_of_.assign(kWindow, 0);
  }
  const uint32_t list = ++observed_;
  for (size_t r = 0; r < rows; ++r) {
    list_of_[next_] = list;
    for (size_t s = 0; s < reference_.signals.size(); ++s) {
      const int c = reference_.signals[s].input;
      window_[s][next_] = c < 0 ? scores[r] : (size_t(c) < width ? inputs[r * width + size_t(c)] : 0.f);
    }
    next_ = (next_ + 1) % kWindow;
    filled_ = std::min(kWindow, filled_ + 1);
  }
}

DriftReport DriftMonitor::Evaluate(const DriftThresholds& t) const {
  DriftReport report;
  report.reference_rows = reference_.rows;
  report.reference_lists =
      reference_.lists > 0 ? reference_.lists : (reference_.rows + kTopRows - 1) / kTopRows;
  std::vector<std::vector<float>> current;
  {
    std::lock_guard<std::mutex> lock(mu_);
    report.rows = filled_;
    for (const auto& w : window_) current.emplace_back(w.begin(), w.begin() + long(filled_));
    // The ring holds whole observations but for its oldest, which may be cut.
    for (size_t i = 0; i < filled_; ++i) report.lists += i == 0 || list_of_[i] != list_of_[i - 1];
    if (filled_ == kWindow && report.lists > 1 && list_of_[0] == list_of_[kWindow - 1]) --report.lists;  // across the wrap
  }
  report.enough = report.rows >= t.min_rows;
  for (size_t s = 0; s < reference_.signals.size(); ++s) {
    DriftSignalReport r;
    r.name = reference_.signals[s].name;
    if (s < current.size() && !current[s].empty()) {
      std::sort(current[s].begin(), current[s].end());
      r.psi = PopulationStabilityIndex(reference_.signals[s].sample, current[s]);
      r.ks = KsStatistic(reference_.signals[s].sample, current[s]);
      r.p_value = KsPValue(r.ks, std::min(reference_.signals[s].sample.size(), report.reference_lists),
                           std::min(current[s].size(), report.lists));
      // The alarm is "any signal": each is tested at the family's p-value
      // shared out among them (Bonferroni), so more signals are not more
      // chances of a false alarm.
      r.breach = report.enough && r.psi > t.psi && r.p_value < t.p_value / double(reference_.signals.size());
    }
    report.breach = report.breach || r.breach;
    report.signals.push_back(r);
  }
  return report;
}

}  // namespace affinity
