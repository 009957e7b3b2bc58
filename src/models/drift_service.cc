#include "models/drift_service.h"

#include <spdlog/spdlog.h>

#include <set>

#include "base/json_writer.h"
#include "models/drift_options.h"

namespace affinity {

DriftService::DriftService(Models models, const DriftOptions& options)
    : models_(std::move(models)),
      thresholds_{options.psi_threshold, options.p_value, size_t(options.min_rows)},
      watch_(options.poll_ms, [this] { return Watch(); }) {}

std::vector<DriftService::ModelDrift> DriftService::Evaluate() const {
  std::vector<ModelDrift> out;
  std::set<const LearnedRanker*> seen;
  for (const auto& m : models_()) {
    if (!m || !seen.insert(m.get()).second) continue;
    ModelDrift d;
    d.model = m->version();
    if (DriftMonitor* monitor = m->drift()) {
      d.has_reference = true;
      d.report = monitor->Evaluate(thresholds_);
    }
    out.push_back(std::move(d));
  }
  return out;
}

std::string DriftService::Json() const {
  JsonWriter w;
  w.BeginObject().Key("thresholds").BeginObject();
  w.Key("psi").Double(thresholds_.psi).Key("p_value").Double(thresholds_.p_value);
  w.Key("min_rows").Uint(thresholds_.min_rows).Key("window_rows").Uint(DriftMonitor::kWindow).EndObject();
  w.Key("models").BeginArray();
  for (const ModelDrift& d : Evaluate()) {
    w.BeginObject().Key("model").String(d.model).Key("has_reference").Bool(d.has_reference);
    if (d.has_reference) {
      const DriftReport& r = d.report;
      w.Key("rows").Uint(r.rows).Key("reference_rows").Uint(r.reference_rows).Key("enough_rows").Bool(r.enough);
      w.Key("responses").Uint(r.lists).Key("reference_responses").Uint(r.reference_lists);
      w.Key("breach").Bool(r.breach).Key("signals").BeginArray();
      for (const auto& s : r.signals) {
        w.BeginObject().Key("name").String(s.name).Key("psi").Double(s.psi).Key("ks").Double(s.ks);
        w.Key("p_value").Double(s.p_value).Key("breach").Bool(s.breach).EndObject();
      }
      w.EndArray();
    } else {
      w.Key("note").String("trained before drift references were kept: retrain to monitor it");
    }
    w.EndObject();
  }
  w.EndArray().EndObject();
  return w.Release();
}

absl::StatusOr<bool> DriftService::Watch() {
  bool changed = false;
  for (const ModelDrift& d : Evaluate()) {
    if (!d.has_reference) continue;
    std::lock_guard<std::mutex> lock(mu_);
    bool& was = breached_[d.model];
    if (d.report.breach == was) continue;
    was = d.report.breach;
    changed = true;
    std::string detail;
    for (const auto& s : d.report.signals)
      if (s.breach || !d.report.breach)
        detail += (detail.empty() ? "" : ", ") + s.name + " psi " + std::to_string(s.psi).substr(0, 5) + " p " +
                  std::to_string(s.p_value).substr(0, 7);
    if (d.report.breach)
      spdlog::warn("drift: model {} has drifted from its training reference over the last {} rows: {}", d.model,
                   d.report.rows, detail);
    else
      spdlog::info("drift: model {} is back within its drift thresholds", d.model);
  }
  return changed;
}


void DriftService::ReportMetrics(MetricsSink& sink) const {
  for (const auto& m : Evaluate()) {
    if (!m.has_reference) continue;
    sink.Gauge("affinity_drift_breach", "1 while a model's drift exceeds the configured thresholds",
               {{"model", m.model}}, m.report.breach ? 1 : 0);
    for (const auto& s : m.report.signals) {
      sink.Gauge("affinity_drift_psi",
                 "Population stability index of a model's served rows against its training reference, by signal",
                 {{"model", m.model}, {"signal", s.name}}, s.psi);
      sink.Gauge("affinity_drift_ks_p_value",
                 "Two-sample Kolmogorov-Smirnov p-value of a model's served rows against its training reference",
                 {{"model", m.model}, {"signal", s.name}}, s.p_value);
    }
  }
}

std::vector<AdminRoute> DriftService::Routes() {
  AdminRoute report{"GET", "/admin/drift", "drift"};
  report.handle = [this](const AdminRequest&) -> absl::StatusOr<AdminReply> { return AdminReply{200, Json()}; };
  return {std::move(report)};
}

}  // namespace affinity
