#include "models/logged_training.h"

#include <algorithm>
#include <chrono>
#include <unordered_map>
#include <unordered_set>

#include "audit/audit_record.h"
#include "base/json_writer.h"
#include "base/status.h"
#include "models/model_registry.h"
#include "ranking/ranker_training.h"
#include "ranking/ranker_options.h"

namespace affinity {
namespace {

struct Outcomes {
  uint64_t last_offset = 0;
  uint64_t first_positive_offset = UINT64_MAX;
  std::vector<std::pair<uint32_t, int64_t>> positives;  // (entity Ref bits, ts)
};

// Per group (a response, with the offset of its first positive outcome): whether
// the current model `cur` never trained on it. Such a group was held out by
// the same rule, or had no positive outcome below the model's training
// watermark (it was not a labelled group then). A model trained elsewhere (eval,
// import) never saw any: empty, every group.
std::vector<char> UnseenBy(const ModelVersion& cur, const HoldoutRule& rule, const RankerRows& rows,
                           const std::vector<uint64_t>& first_positive) {
  if (cur.source != "logged-impressions") return {};
  const bool same_rule =
      cur.holdout == HoldoutBy::kRequestId && cur.holdout_share == rule.share && cur.holdout_seed == rule.seed;
  std::vector<char> unseen(rows.groups.size(), 0);
  for (size_t g = 0; g < unseen.size(); ++g)
    unseen[g] = (same_rule && rule.HeldOut(rows.keys[g])) || first_positive[g] >= cur.watermark_offset;
  return unseen;
}

std::string ParamsJson(const RankerOptions& o, const std::string& stream_inputs) {
  JsonWriter w;
  w.BeginObject();
  w.Key("objective").String(o.objective).Key("rounds").Int(o.rounds).Key("max_depth").Int(o.max_depth);
  w.Key("eta").Double(o.eta).Key("pair_samples").Int(o.pair_samples).Key("margin_scale").Double(o.margin_scale);
  w.Key("min_child_weight").Double(o.min_child_weight).Key("label_window_hours").Int(o.label_window_hours);
  w.Key("monotone").Bool(o.monotone).Key("stream_inputs").String(stream_inputs);
  w.EndObject();
  return w.Release();
}

// The feedback that names a response, by request id, and the log's watermark.
struct LoggedFeedback {
  std::unordered_map<std::string, Outcomes> by_request;
  uint64_t watermark = 0;
  int64_t watermark_ts = 0;
};

absl::StatusOr<LoggedFeedback> ReadLoggedFeedback(const Store& store) {
  LoggedFeedback feedback;
  AFF_RETURN_IF_ERROR(store.ScanEvents([&](const Event& e) {
    feedback.watermark = e.offset + 1;
    feedback.watermark_ts = std::max(feedback.watermark_ts, e.ts);
    if (e.request_id.empty()) return true;
    Outcomes& o = feedback.by_request[e.request_id];
    o.last_offset = e.offset;
    if (IsPositive(e.action) && e.weight > 0) {
      o.positives.push_back({e.entity.bits, e.ts});
      o.first_positive_offset = std::min(o.first_positive_offset, e.offset);
    }
    return true;
  }));
  return feedback;
}

// The newest responses with at least one positive outcome: (last offset, request id).
std::vector<std::pair<uint64_t, const std::string*>> NewestAnswered(const LoggedFeedback& feedback, int max_groups) {
  std::vector<std::pair<uint64_t, const std::string*>> order;
  for (const auto& [rid, o] : feedback.by_request)
    if (!o.positives.empty()) order.push_back({o.last_offset, &rid});
  std::sort(order.begin(), order.end(), [](auto& a, auto& b) { return a.first > b.first; });
  if (order.size() > size_t(std::max(1, max_groups))) order.resize(size_t(max_groups));
  return order;
}

// Rows from the audit records: inputs as served, labels from the outcomes; per
// group, the offset of its first positive outcome.
absl::Status AddLoggedRows(const Store& store, const EntityRegistry& registry, const LoggedFeedback& feedback,
                           const std::vector<std::pair<uint64_t, const std::string*>>& order, int label_window_hours,
                           RankerRows* rows, std::vector<uint64_t>* first_positive) {
  const int64_t window_ms = int64_t(label_window_hours) * 3600 * 1000;
  for (const auto& [offset, rid] : order) {
    AFF_ASSIGN_OR_RETURN(auto record, store.GetAudit(*rid));
    if (!record) continue;  // responses served with audit off, or not yet flushed
    auto logged = ReadLoggedResponse(*record);
    if (!logged.ok()) continue;
    const int64_t served_ts = logged->served_ms;
    std::unordered_set<std::string> relevant;
    const Outcomes& outcomes = feedback.by_request.at(*rid);
    for (const auto& [bits, ts] : outcomes.positives)
      if (ts >= served_ts - 60000 && ts - served_ts <= window_ms) relevant.insert(registry.ExtId(Ref::FromBits(bits)));
    std::vector<float> x, y;
    for (const LoggedResult& r : logged->results) {
      x.insert(x.end(), r.inputs.begin(), r.inputs.end());
      y.push_back(relevant.count(r.entity_id) ? 1.f : 0.f);
    }
    if (y.empty() || std::find(y.begin(), y.end(), 1.f) == y.end()) continue;
    rows->AddGroup(x, y, 0, GroupKey(*rid));  // held out or not by its request id: stable as logs grow
    rows->AddHead(logged->head, GroupKey(*rid));
    first_positive->push_back(outcomes.first_positive_offset);
  }
  return absl::OkStatus();
}

// The registry entry of a model trained from logged responses up to the watermark.
ModelVersion LoggedModelVersion(const RankerFit& fit, const HoldoutRule& rule, const LoggedFeedback& feedback,
                                const RankerOptions& ro) {
  ModelVersion meta;
  meta.holdout = HoldoutBy::kRequestId;
  meta.holdout_share = rule.share;
  meta.holdout_seed = rule.seed;
  meta.watermark_offset = feedback.watermark;
  meta.watermark_ts = feedback.watermark_ts;
  meta.source = "logged-impressions";
  meta.params_json = ParamsJson(ro, StreamInputsNote(fit));
  meta.ndcg = fit.ndcg_model;
  meta.blend_ndcg = fit.ndcg_blend;
  meta.current_ndcg = fit.ndcg_current;
  meta.compared_ndcg = fit.ndcg_compared;
  meta.compared_groups = int64_t(fit.compared_groups);
  meta.train_groups = int64_t(fit.train_groups);
  meta.validation_groups = int64_t(fit.validation_groups);
  meta.train_rows = int64_t(fit.train_rows);
  return meta;
}

// With ranker.auto_promote, a registered model that passed the gate is promoted
// at once (ranker.rollout = "direct") or starts as a canary.
absl::Status ShipPassedModel(ModelRegistry& models, const RankerOptions& ro, LoggedTrainingReport* report) {
  if (ro.rollout == RolloutMode::kDirect) {
    absl::Status s = models.Promote(report->version, ro.gate_tolerance, /*force=*/false,
                                    "promoted by affinity batch (ranker.rollout = \"direct\"): it passed the gate");
    if (s.ok()) {
      report->promoted = true;
    } else if (absl::IsFailedPrecondition(s)) {  // another model became current meanwhile
      report->note = std::string(s.message());
    } else {
      return s;
    }
    return absl::OkStatus();
  }
  // A model that passes the gate ships as a canary, which the serving side
  // runs as an experiment and promotes or rolls back.
  CanaryPlan plan{ro.canary_share, ro.canary_min_viewers, ro.canary_max_increase, ro.canary_max_latency_increase};
  AFF_RETURN_IF_ERROR(models.StartCanary(report->version, plan));
  report->canary = true;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<LoggedTrainingReport> TrainFromLoggedImpressions(const std::string& data_dir, const Store& store,
                                                                const EntityRegistry& registry,
                                                                const RankerOptions& ro, int threads) {
  auto t0 = std::chrono::steady_clock::now();
  LoggedTrainingReport report;
  // 1. Feedback that names a response.
  AFF_ASSIGN_OR_RETURN(const LoggedFeedback feedback, ReadLoggedFeedback(store));
  // 2. The newest responses with at least one positive outcome.
  const auto order = NewestAnswered(feedback, ro.max_groups);
  // 3. Rows from the audit records: inputs as served, labels from the outcomes.
  RankerRows rows;
  std::vector<uint64_t> first_positive;  // per group
  AFF_RETURN_IF_ERROR(AddLoggedRows(store, registry, feedback, order, ro.label_window_hours, &rows, &first_positive));
  report.groups = rows.groups.size();
  report.rows = rows.rows();
  if (rows.groups.size() < size_t(std::max(2, ro.min_groups))) {
    report.note = "no model trained yet, the blend ranks (as it should on a new data dir): it learns from served "
                  "responses that later got a click or like, and has " + std::to_string(rows.groups.size()) + " of the " +
                  std::to_string(ro.min_groups) + " it needs (ranker.min_groups)";
    return report;
  }
  // 4. Train, compare with the current model on the held-out groups it never
  // trained on, register.
  ModelRegistry models(data_dir);
  AFF_ASSIGN_OR_RETURN(RegistryState st, models.Read());
  const HoldoutRule rule;
  std::unique_ptr<LearnedRanker> current;
  CurrentModel compare;
  if (const ModelVersion* cur = st.Find(st.current)) {
    auto m = models.Load(st.current);
    if (m.ok()) current = std::move(*m);
    compare = {current.get(), UnseenBy(*cur, rule, rows, first_positive)};
  }
  RankerOptions train = ro;
  if (train.threads <= 0) train.threads = threads > 0 ? threads : 2;
  AFF_ASSIGN_OR_RETURN(auto fit,
                       FitRanker(rows, train, 20, rule, compare));
  ModelVersion meta = LoggedModelVersion(fit, rule, feedback, ro);
  // 5. The offline gate; a refusal stays with the version (model list, /admin/models).
  const std::optional<std::string> why =
      ro.auto_promote ? GateRefusal(meta, st.Find(st.current), ro.gate_tolerance) : std::nullopt;
  if (why) {
    meta.rollout.state = ModelState::kRefused;
    meta.rollout.note = "not shipped: " + *why + " (ranker.gate_tolerance)";
  }
  AFF_ASSIGN_OR_RETURN(report.version, models.Register(*fit.model, meta));
  report.trained = true;
  report.ndcg = fit.ndcg_model;
  report.blend_ndcg = fit.ndcg_blend;
  report.current_ndcg = fit.ndcg_current;
  report.compared_ndcg = fit.ndcg_compared;
  report.compared_groups = fit.compared_groups;
  report.stream_inputs = StreamInputsNote(fit);
  if (why) {
    report.note = meta.rollout.note;
  } else if (ro.auto_promote) {
    AFF_RETURN_IF_ERROR(ShipPassedModel(models, ro, &report));
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace affinity
