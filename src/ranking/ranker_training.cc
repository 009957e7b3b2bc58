#include "ranking/ranker_training.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "base/status.h"
#include "ranking/ranker_options.h"

namespace affinity {

bool HoldoutRule::HeldOut(uint64_t key) const {
  uint64_t h = key ^ seed;  // SplitMix64's finaliser
  h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
  h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
  h ^= h >> 31;
  return double(h >> 11) * 0x1.0p-53 < share;
}

uint64_t GroupKey(std::string_view name) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : name) h = (h ^ c) * 0x100000001B3ull;
  return h;
}

void RankerRows::AddGroup(const std::vector<float>& x_rows, const std::vector<float>& labels, unsigned relevant_total) {
  AddGroup(x_rows, labels, relevant_total, groups.size());
}

void RankerRows::AddGroup(const std::vector<float>& x_rows, const std::vector<float>& labels, unsigned relevant_total,
                          uint64_t key) {
  x.insert(x.end(), x_rows.begin(), x_rows.end());
  y.insert(y.end(), labels.begin(), labels.end());
  groups.push_back(unsigned(labels.size()));
  relevant.push_back(relevant_total);
  keys.push_back(key);
}

void RankerRows::AddHead(const std::vector<std::vector<float>>& head_rows, uint64_t key) {
  for (const auto& row : head_rows) {
    if (row.size() != size_t(kNumRankInputs)) continue;
    head_x.insert(head_x.end(), row.begin(), row.end());
    head_keys.push_back(key);
  }
}

double GroupNdcg(const RankerRows& rows, const std::vector<float>& scores, const std::vector<size_t>& which, int k) {
  std::vector<size_t> start(rows.groups.size() + 1, 0);
  for (size_t g = 0; g < rows.groups.size(); ++g) start[g + 1] = start[g] + rows.groups[g];
  double sum = 0;
  size_t n = 0;
  std::vector<uint32_t> order;
  for (size_t g : which) {
    const size_t b = start[g], len = rows.groups[g];
    unsigned positives = 0;
    for (size_t i = 0; i < len; ++i) positives += rows.y[b + i] > 0;
    const unsigned relevant = std::max(positives, rows.relevant[g]);
    if (relevant == 0) continue;
    order.resize(len);
    std::iota(order.begin(), order.end(), 0u);
    std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t c) { return scores[b + a] > scores[b + c]; });
    double dcg = 0, idcg = 0;
    for (size_t r = 0; r < len && r < size_t(k); ++r)
      if (rows.y[b + order[r]] > 0) dcg += 1.0 / std::log2(double(r) + 2.0);
    for (size_t r = 0; r < relevant && r < size_t(k); ++r) idcg += 1.0 / std::log2(double(r) + 2.0);
    sum += dcg / idcg;
    ++n;
  }
  return n ? sum / double(n) : 0.0;
}

std::string StreamInputsNote(const RankerFit& fit) {
  std::string note = fit.stream_inputs ? "used" : "not used";
  if (fit.ndcg_without_stream >= 0 && fit.ndcg_with_stream >= 0) {
    char buf[96];
    std::snprintf(buf, sizeof buf, " (held-out ndcg without %.4f, with %.4f)", fit.ndcg_without_stream,
                  fit.ndcg_with_stream);
    note += buf;
  }
  return note;
}

namespace {

// The drift reference: what the monitor will see. Serving feeds the monitor
// the model's scores of the blend's best DriftMonitor::kTopRows candidates
// (whatever it then serves), and a logged response keeps those rows' inputs
// (RankerRows::head_x), so the reference is the model's scores of the rows of
// held-out responses: the same slice of the same kind of list, whichever
// policy served the logs, on responses the model never trained on. Without
// them, the held-out rows the blend placed in its best kTopRows (their
// blend_rank) stand in. The signals are the inputs that move the model most
// there (mean |path attribution| over up to 2,000 rows).
absl::Status SetDriftReference(const RankerRows& rows, const RankerRows& held, const std::vector<float>& held_pred,
                               const HoldoutRule& holdout, LearnedRanker* model) {
  const size_t w = kNumRankInputs;
  std::vector<float> x, scores;
  size_t lists = 0;  // the responses the rows come from
  for (size_t r = 0; r < rows.head_keys.size(); ++r)
    if (holdout.HeldOut(rows.head_keys[r])) {
      x.insert(x.end(), rows.head_x.begin() + long(r * w), rows.head_x.begin() + long((r + 1) * w));
      lists += r == 0 || rows.head_keys[r] != rows.head_keys[r - 1];
    }
  if (!x.empty()) {
    AFF_ASSIGN_OR_RETURN(scores, model->Predict(x.data(), x.size() / w));
  } else {
    for (size_t g = 0, r = 0; g < held.groups.size(); ++g) {
      bool any = false;
      for (const size_t end = r + held.groups[g]; r < end; ++r) {
        if (held.x[r * w + kInBlendRank] >= float(DriftMonitor::kTopRows)) continue;
        x.insert(x.end(), held.x.begin() + long(r * w), held.x.begin() + long((r + 1) * w));
        scores.push_back(held_pred[r]);
        any = true;
      }
      lists += any;
    }
  }
  if (scores.empty()) return absl::OkStatus();
  const size_t n = std::min<size_t>(scores.size(), 2000);
  AFF_ASSIGN_OR_RETURN(auto contrib, model->Contributions(x.data(), n, AttributionMethod::kSaabas));
  std::vector<double> weight(w, 0);
  for (size_t r = 0; r < n; ++r)
    for (size_t c = 0; c < w; ++c) weight[c] += std::fabs(contrib[r * (w + 1) + c]);
  std::vector<int> columns(w);
  std::iota(columns.begin(), columns.end(), 0);
  std::stable_sort(columns.begin(), columns.end(), [&](int a, int c) { return weight[size_t(a)] > weight[size_t(c)]; });
  columns.resize(std::min<size_t>(5, w));
  model->SetDriftReference(
      DriftReference::Build(x.data(), w, scores.data(), scores.size(), columns, RankerInputNames(), 2000, lists));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RankerFit> FitRanker(const RankerRows& rows, const RankerOptions& options, int k,
                                    const HoldoutRule& holdout, const CurrentModel& current) {
  auto t0 = std::chrono::steady_clock::now();
  const size_t n_groups = rows.groups.size();
  if (n_groups < 2) return absl::FailedPreconditionError("ranker: fewer than two labelled groups to train on");
  // The split: a salted hash of each group's key, stable as groups come and go.
  std::vector<size_t> train, valid;
  for (size_t g = 0; g < n_groups; ++g)
    (holdout.HeldOut(g < rows.keys.size() ? rows.keys[g] : g) ? valid : train).push_back(g);
  if (valid.empty()) valid.push_back(train.back()), train.pop_back();
  if (train.empty()) return absl::FailedPreconditionError("ranker: no groups left to train on");
  std::vector<size_t> start(n_groups + 1, 0);
  for (size_t g = 0; g < n_groups; ++g) start[g + 1] = start[g] + rows.groups[g];
  const size_t w = kNumRankInputs;
  std::vector<float> tx, ty;
  std::vector<unsigned> tg;
  for (size_t g : train) {
    tx.insert(tx.end(), rows.x.begin() + start[g] * w, rows.x.begin() + start[g + 1] * w);
    ty.insert(ty.end(), rows.y.begin() + start[g], rows.y.begin() + start[g + 1]);
    tg.push_back(rows.groups[g]);
  }
  RankerFit fit;
  fit.train_groups = train.size();
  fit.validation_groups = valid.size();
  fit.train_rows = ty.size();
  RankerRows held;
  for (size_t g : valid)
    held.AddGroup(std::vector<float>(rows.x.begin() + start[g] * w, rows.x.begin() + start[g + 1] * w),
                  std::vector<float>(rows.y.begin() + start[g], rows.y.begin() + start[g + 1]), rows.relevant[g]);
  std::vector<size_t> all(held.groups.size());
  std::iota(all.begin(), all.end(), size_t(0));
  // With and/or without the streaming groups' inputs (missing: never split on).
  // With them first, so that the rows are then masked in place, not copied.
  const StreamInputs mode = options.stream_inputs;
  std::vector<float> pred;
  std::unique_ptr<LearnedRanker> with;
  std::vector<float> with_pred;
  if (mode == StreamInputs::kOn || mode == StreamInputs::kAuto) {
    AFF_ASSIGN_OR_RETURN(with, LearnedRanker::Train(tx, ty, tg, options));
    AFF_ASSIGN_OR_RETURN(with_pred, with->Predict(held.x.data(), held.rows()));
    fit.ndcg_with_stream = GroupNdcg(held, with_pred, all, k);
  }
  if (mode == StreamInputs::kOff || mode == StreamInputs::kAuto) {
    for (size_t r = 0; r < ty.size(); ++r)
      std::fill(tx.begin() + long(r * w + kFirstStreamInput), tx.begin() + long((r + 1) * w), std::nanf(""));
    AFF_ASSIGN_OR_RETURN(fit.model, LearnedRanker::Train(tx, ty, tg, options));
    AFF_ASSIGN_OR_RETURN(pred, fit.model->Predict(held.x.data(), held.rows()));
    fit.ndcg_without_stream = fit.ndcg_model = GroupNdcg(held, pred, all, k);
  }
  if (with && (!fit.model || fit.ndcg_with_stream > fit.ndcg_model)) {
    fit.model = std::move(with);
    pred = std::move(with_pred);
    fit.ndcg_model = fit.ndcg_with_stream;
    fit.stream_inputs = true;
  }
  if (!fit.model) return absl::InternalError("no fit for ranker.stream_inputs " + std::string(StreamInputsName(mode)));
  tx.clear();
  tx.shrink_to_fit();
  // Compare with the blend on the held-out groups, and with the current model
  // on those of them it never trained on.
  std::vector<float> blend(held.rows());
  for (size_t i = 0; i < held.rows(); ++i) blend[i] = held.x[i * w + kInBlendScore];
  fit.ndcg_blend = GroupNdcg(held, blend, all, k);
  if (current.model) {
    std::vector<size_t> compared;
    for (size_t i = 0; i < valid.size(); ++i)
      if (current.unseen.empty() || (valid[i] < current.unseen.size() && current.unseen[valid[i]])) compared.push_back(i);
    if (!compared.empty()) {
      AFF_ASSIGN_OR_RETURN(auto cur, current.model->Predict(held.x.data(), held.rows()));
      fit.ndcg_current = GroupNdcg(held, cur, compared, k);
      fit.ndcg_compared = GroupNdcg(held, pred, compared, k);
      fit.compared_groups = compared.size();
    }
  }
  AFF_RETURN_IF_ERROR(SetDriftReference(rows, held, pred, holdout, fit.model.get()));
  fit.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return fit;
}

}  // namespace affinity
