#include "experiments/arm_ledger.h"

#include <chrono>

#include "audit/audit_record.h"
#include "experiments/experiment_entry.h"
#include "experiments/experiments_options.h"

namespace affinity {
namespace {

constexpr int kWriterGatherMs = 2;
// Clicks and hides already counted, by (request, result, action): a repeat of
// one of these is not counted again.
constexpr size_t kRememberedOutcomes = 1 << 20;

}  // namespace

ArmLedger::ArmLedger(ExperimentStateStore* state, const ExperimentCatalogue* catalogue, const EntityRegistry* registry,
                     const LiveState* live, AuditLog* audit, const Clock* clock, const ExperimentsOptions& options)
    : state_(state),
      catalogue_(catalogue),
      registry_(registry),
      live_(live),
      audit_(audit),
      clock_(clock),
      options_(options) {
  writer_ = std::thread([this] { RunWriter(); });
}

ArmLedger::~ArmLedger() {
  {
    std::lock_guard<std::mutex> lock(writer_mu_);
    writer_stop_ = true;
  }
  writer_cv_.notify_all();
  writer_.join();
  Checkpoint();
}

void ArmLedger::Write(std::vector<CounterDelta> deltas) {
  if (deltas.empty()) return;
  if (!state_->AddCounters(deltas).ok()) write_errors_++;
}

void ArmLedger::Enqueue(std::vector<CounterDelta> deltas) {
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

void ArmLedger::RunWriter() {
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
    std::vector<CounterDelta> deltas;
    deltas.reserve(batch.size());
    for (auto& [key, values] : batch) deltas.emplace_back(key, std::move(values));
    Write(std::move(deltas));
    lock.lock();
    writing_ = false;
    writer_idle_.notify_all();
  }
}

void ArmLedger::FlushCounters() {
  std::unique_lock<std::mutex> lock(writer_mu_);
  writer_idle_.wait(lock, [&] { return pending_.empty() && !writing_; });
}

void ArmLedger::RecordResponse(const Assignment& a, const std::string& viewer_id, const QueryResponse& resp,
                               double latency_ms) {
  if (a.in.empty()) return;
  ServedFacts facts;
  facts.latency_ms = latency_ms;
  facts.degraded = resp.degraded;
  facts.fallback = resp.ranker_fallback;
  facts.results.reserve(resp.results.size());
  for (const QueryResult& r : resp.results) facts.results.push_back(r.ref.bits);
  Book(a, viewer_id, [&](ExperimentMetrics& m, int arm, int64_t covariate, std::vector<CounterDelta>* out) {
    m.OnResponse(viewer_id, arm, covariate, facts, out);
  });
}

void ArmLedger::RecordError(const Assignment& a, const std::string& viewer_id) {
  if (a.in.empty()) return;
  Book(a, viewer_id, [&](ExperimentMetrics& m, int arm, int64_t covariate, std::vector<CounterDelta>* out) {
    m.OnError(viewer_id, arm, covariate, out);
  });
}

void ArmLedger::Book(const Assignment& a, const std::string& viewer_id, const BookFn& record) {
  // The covariate: the viewer's events so far (used at their first request in an experiment).
  const auto viewer = registry_->Find(viewer_id);
  const int64_t covariate = viewer ? int64_t(live_->Viewer(*viewer)->events) : 0;
  std::vector<CounterDelta> deltas;
  for (const auto& in : a.in) {
    std::lock_guard<std::mutex> lock(in.entry->state->mu);
    record(in.entry->state->metrics, in.arm, covariate, &deltas);
  }
  Enqueue(std::move(deltas));
}

void ArmLedger::RecordFeedback(const std::vector<Event>& events) {
  if (catalogue_->Entries()->empty()) return;  // no experiment: no audit look-ups on the feedback path
  std::vector<CounterDelta> deltas;
  for (const Event& ev : events) Attribute(ev, &deltas);
  Write(std::move(deltas));
}

void ArmLedger::Attribute(const Event& ev, std::vector<CounterDelta>* deltas) {
  const bool click = ev.action == Action::kClick, hide = ev.action == Action::kHide;
  if ((!click && !hide) || ev.request_id.empty()) return;
  // The response as its audit record keeps it (in memory until written, then
  // in the store): its viewer, results and arms.
  if (!audit_) return;
  auto rec = audit_->Get(ev.request_id);
  if (!rec.ok() || !rec->has_value()) return;  // unknown (or expired) request: accepted, not attributed
  auto served = ReadServedRecord(**rec);
  if (!served.ok() || served->experiments.empty()) return;
  const int64_t window_ms = int64_t(options_.attribution_hours * 3600e3);
  if (clock_->NowMillis() - served->served_ms > window_ms) return;  // too late to count
  const std::string viewer = registry_->ExtId(ev.viewer);
  if (viewer != served->viewer_id) return;
  const std::string entity = registry_->ExtId(ev.entity);
  size_t index = served->entity_ids.size();
  for (size_t i = 0; i < served->entity_ids.size() && index == served->entity_ids.size(); ++i)
    if (served->entity_ids[i] == entity) index = i;
  if (index == served->entity_ids.size()) return;  // not one of its results
  if (!FirstOutcome(AssignmentHash(ev.request_id, std::to_string(index) + (click ? "/click" : "/hide")))) return;
  for (const auto& x : served->experiments) {
    auto e = catalogue_->Find(x.experiment);
    if (!e) continue;
    for (size_t arm = 0; arm < e->def.arms.size(); ++arm)
      if (e->def.arms[arm].name == x.arm) {
        std::lock_guard<std::mutex> lock(e->state->mu);
        e->state->metrics.OnOutcome(viewer, int(arm), click, hide, deltas);
      }
  }
}

bool ArmLedger::FirstOutcome(uint64_t key) {
  std::lock_guard<std::mutex> lock(outcomes_mu_);
  if (!outcomes_.insert(key).second) return false;
  outcome_order_.push_back(key);
  while (outcome_order_.size() > kRememberedOutcomes) {
    outcomes_.erase(outcome_order_.front());
    outcome_order_.pop_front();
  }
  return true;
}

void ArmLedger::Resolve(EntryState& state) const {
  ExperimentMetrics::Unresolved u;
  {
    std::lock_guard<std::mutex> lock(state.mu);
    u = state.metrics.TakeUnresolved();
  }
  if (u.responses.empty()) return;
  // Creators and cohorts of the results, looked up and summed without the lock,
  // so that queries wait at most for one short merge of the sums.
  std::vector<std::unordered_map<uint32_t, int64_t>> creators;
  std::vector<std::unordered_map<std::string, int64_t>> cohorts;
  for (const auto& [arm, results] : u.responses) {
    if (arm < 0) continue;
    if (size_t(arm) >= creators.size()) creators.resize(size_t(arm) + 1), cohorts.resize(size_t(arm) + 1);
    for (uint32_t bits : results) {
      const Ref r = Ref::FromBits(bits);
      const Ref creator = r.kind() == Kind::kItem ? registry_->CreatorOf(r) : r;
      creators[size_t(arm)][creator.bits]++;
      auto info = registry_->Get(r);
      cohorts[size_t(arm)][info ? info->cohort : ""]++;
    }
  }
  std::lock_guard<std::mutex> lock(state.mu);
  for (size_t arm = 0; arm < creators.size(); ++arm)
    state.metrics.AddResolvedCounts(int(arm), creators[arm], cohorts[arm]);
}

ArmLedger::Reading ArmLedger::Read(const ExperimentEntry& e) const {
  Resolve(*e.state);
  Reading r;
  std::lock_guard<std::mutex> lock(e.state->mu);
  r.figures = e.state->metrics.Figures();
  r.cohort_shares = e.state->metrics.CohortShares();
  r.running_min = e.state->avp;
  return r;
}

void ArmLedger::KeepMinimums(const ExperimentEntry& e, const std::map<std::string, double>& seen) {
  std::map<std::string, double> all;
  {
    std::lock_guard<std::mutex> lock(e.state->mu);
    bool lowered = false;
    for (const auto& [k, v] : seen) {
      auto [it, inserted] = e.state->avp.try_emplace(k, v);
      if (inserted || v < it->second) it->second = v, lowered = true;
    }
    if (!lowered) return;
    all = e.state->avp;
  }
  // A restarted server resumes each running minimum where it was.
  if (!state_->SaveRunningMinimums(e.def.id, all).ok()) write_errors_++;
}

void ArmLedger::Checkpoint() {
  const auto set = catalogue_->Entries();  // held while iterating
  for (const auto& e : *set) {
    Resolve(*e->state);
    ExperimentMetrics::Dirty dirty;
    {
      std::lock_guard<std::mutex> lock(e->state->mu);
      dirty = e->state->metrics.TakeDirty();
    }
    dirty.Deduplicate();  // outside the lock: queries keep recording meanwhile
    std::vector<CounterDelta> totals;
    {
      std::lock_guard<std::mutex> lock(e->state->mu);
      totals = e->state->metrics.Totals(dirty);
    }
    if (!totals.empty() && !state_->SetCounters(totals).ok()) write_errors_++;
  }
}

std::vector<ArmLedger::ArmStatus> ArmLedger::Status() const {
  std::vector<ArmStatus> out;
  const auto set = catalogue_->Entries();  // held while iterating
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
