// Booking into experiments' counters (experiments/experiment_service.h): each
// response and error of a viewer in an experiment, and each click or hide on
// a served result, attributed through the response's audit record; counters
// go to the store from a writer thread; the arms' counts for /admin/stats.
#include <simdjson.h>

#include <algorithm>
#include <chrono>

#include "audit/audit_record.h"
#include "experiments/experiment_entry.h"
#include "experiments/experiment_service.h"

namespace affinity {
namespace {

constexpr int kWriterGatherMs = 2;
// Clicks and hides already counted, by (request, result, action): a repeat of
// one of these is not counted again.
constexpr size_t kRememberedOutcomes = 1 << 20;

std::string RequestIdOf(const std::string& context) {
  if (context.find("request_id") == std::string::npos) return "";
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view id;
  if (parser.parse(context).get(doc) || doc["request_id"].get(id)) return "";
  return std::string(id);
}

}  // namespace

void ExperimentService::Write(std::vector<Store::CounterDelta> deltas) {
  if (deltas.empty()) return;
  if (!store_->AddCounters(deltas).ok()) write_errors_++;
}

void ExperimentService::Enqueue(std::vector<Store::CounterDelta> deltas) {
  if (deltas.empty()) return;
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(writer_mu_);
    was_empty = pending_.empty();
    for (auto& [key, values] : deltas) {
      auto [it, inserted] = pending_.try_emplace(std::move(key), std::move(values));
      if (inserted) continue;
      if (it->second.size() < values.size()) it->second.resize(values.size(), 0);
      for (size_t i = 0; i < values.size(); ++i) it->second[i] += values[i];
    }
  }
  if (was_empty) writer_cv_.notify_one();  // the writer is asleep only when nothing is queued
}

void ExperimentService::RunWriter() {
  std::unique_lock<std::mutex> lock(writer_mu_);
  while (true) {
    writer_cv_.wait(lock, [&] { return writer_stop_ || !pending_.empty(); });
    if (pending_.empty()) return;  // stopping, nothing left
    // Let a few milliseconds of responses gather into one write: one wake-up
    // and one WAL append for all of them, instead of one per response.
    if (!writer_stop_) writer_cv_.wait_for(lock, std::chrono::milliseconds(kWriterGatherMs), [&] { return writer_stop_; });
    std::unordered_map<std::string, std::vector<int64_t>> batch;
    batch.swap(pending_);
    writing_ = true;
    lock.unlock();
    std::vector<Store::CounterDelta> deltas;
    deltas.reserve(batch.size());
    for (auto& [key, values] : batch) deltas.emplace_back(key, std::move(values));
    Write(std::move(deltas));
    lock.lock();
    writing_ = false;
    writer_idle_.notify_all();
  }
}

void ExperimentService::FlushCounters() {
  std::unique_lock<std::mutex> lock(writer_mu_);
  writer_idle_.wait(lock, [&] { return pending_.empty() && !writing_; });
}

void ExperimentService::RecordResponse(const Assignment& a, const std::string& viewer_id, const QueryResponse& resp,
                                       double latency_ms) {
  if (a.in.empty()) return;
  ServedFacts facts;
  facts.latency_ms = latency_ms;
  facts.degraded = resp.degraded;
  facts.fallback = resp.ranker_fallback;
  facts.results.reserve(resp.results.size());
  for (const QueryResult& r : resp.results) facts.results.push_back(r.ref.bits);
  Book(a, viewer_id, [&](ExperimentMetrics& m, int arm, int64_t covariate, std::vector<Store::CounterDelta>* out) {
    m.OnResponse(viewer_id, arm, covariate, facts, out);
  });
}

void ExperimentService::RecordError(const Assignment& a, const std::string& viewer_id) {
  if (a.in.empty()) return;
  Book(a, viewer_id, [&](ExperimentMetrics& m, int arm, int64_t covariate, std::vector<Store::CounterDelta>* out) {
    m.OnError(viewer_id, arm, covariate, out);
  });
}

void ExperimentService::Book(const Assignment& a, const std::string& viewer_id, const BookFn& record) {
  // The covariate: the viewer's events so far (used at their first request in an experiment).
  const auto viewer = registry_->Find(viewer_id);
  const int64_t covariate = viewer ? int64_t(live_->Viewer(*viewer)->events) : 0;
  std::vector<Store::CounterDelta> deltas;
  for (const auto& in : a.in) {
    const auto* e = static_cast<const Entry*>(in.entry.get());
    std::lock_guard<std::mutex> lock(e->state->mu);
    record(e->state->metrics, in.arm, covariate, &deltas);
  }
  Enqueue(std::move(deltas));
}

void ExperimentService::RecordFeedback(const std::vector<Event>& events) {
  if (set_.load()->empty()) return;  // no experiment: no audit look-ups on the feedback path
  std::vector<Store::CounterDelta> deltas;
  const int64_t window_ms = int64_t(options_.attribution_hours * 3600e3);
  for (const Event& ev : events) {
    const bool click = ev.action == Action::kClick, hide = ev.action == Action::kHide;
    if ((!click && !hide) || ev.context.empty()) continue;
    const std::string request_id = RequestIdOf(ev.context);
    if (request_id.empty()) continue;
    // The response as its audit record keeps it (in memory until written,
    // then in the store): its viewer, results and arms.
    if (!audit_) continue;
    auto rec = audit_->Get(request_id);
    if (!rec.ok() || !rec->has_value()) continue;  // unknown (or expired) request: accepted, not attributed
    auto served = ReadServedRecord(**rec);
    if (!served.ok() || served->experiments.empty()) continue;
    if (clock_->NowMillis() - served->served_ms > window_ms) continue;  // too late to count
    const std::string viewer = registry_->ExtId(ev.viewer);
    if (viewer != served->viewer_id) continue;
    const std::string entity = registry_->ExtId(ev.entity);
    size_t index = served->entity_ids.size();
    for (size_t i = 0; i < served->entity_ids.size() && index == served->entity_ids.size(); ++i)
      if (served->entity_ids[i] == entity) index = i;
    if (index == served->entity_ids.size()) continue;  // not one of its results
    if (!FirstOutcome(AssignmentHash(request_id, std::to_string(index) + (click ? "/click" : "/hide")))) continue;
    for (const auto& x : served->experiments) {
      auto e = Find(x.experiment);
      if (!e) continue;
      for (size_t arm = 0; arm < e->def.arms.size(); ++arm)
        if (e->def.arms[arm].name == x.arm) {
          std::lock_guard<std::mutex> lock(e->state->mu);
          e->state->metrics.OnOutcome(viewer, int(arm), click, hide, &deltas);
        }
    }
  }
  Write(std::move(deltas));
}

bool ExperimentService::FirstOutcome(uint64_t key) {
  std::lock_guard<std::mutex> lock(outcomes_mu_);
  if (!outcomes_.insert(key).second) return false;
  outcome_order_.push_back(key);
  while (outcome_order_.size() > kRememberedOutcomes) {
    outcomes_.erase(outcome_order_.front());
    outcome_order_.pop_front();
  }
  return true;
}

std::vector<ExperimentService::ArmStatus> ExperimentService::Status() const {
  std::vector<ArmStatus> out;
  const std::shared_ptr<const Set> set = set_.load();  // held while iterating
  for (const auto& e : *set) {
    std::vector<ArmFigures> f;
    {
      std::lock_guard<std::mutex> lock(e->state->mu);
      f = e->state->metrics.Figures();
    }
    for (size_t i = 0; i < e->def.arms.size(); ++i) {
      ArmStatus s;
      s.experiment = e->def.id;
      s.arm = e->def.arms[i].name;
      s.running = e->def.running() && !e->def.arms[i].stopped;
      s.viewers = f[i].viewers, s.responses = f[i].responses, s.exposures = f[i].exposures;
      s.clicks = f[i].clicks, s.hides = f[i].hides;
      out.push_back(s);
    }
  }
  return out;
}

}  // namespace affinity
