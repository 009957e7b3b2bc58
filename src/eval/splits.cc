// Offline evaluation, step 1: the data and its split.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "base/strings.h"
#include "eval/internal/eval_parts.h"

namespace affinity::eval_internal {
namespace {

// Keeps the events not held out.
void DropHeld(ParsedDataset* d, const std::vector<bool>& held) {
  std::vector<RawEvent> train;
  for (size_t i = 0; i < d->events.size(); ++i)
    if (!held[i]) train.push_back(std::move(d->events[i]));
  d->events.swap(train);
}

absl::Status ParseLightgcnTest(const std::string& file, TestSet* out) {
  std::ifstream in(file);
  if (!in) return absl::NotFoundError("cannot open " + file);
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    auto f = SplitWhitespace(StripCr(line));
    if (f.empty()) continue;
    for (auto tok : f)
      if (!ParseInt64(tok) || *ParseInt64(tok) < 0)
        return absl::InvalidArgumentError(file + ":" + std::to_string(n) + ": '" + std::string(tok) +
                                          "' is not a non-negative integer id");
    if (f.size() < 2) continue;  // a user without test items is not evaluated
    out->users.push_back(absl::StrCat("u", std::string(f[0])));
    std::vector<std::string> items;
    for (size_t k = 1; k < f.size(); ++k) items.push_back(absl::StrCat("i", std::string(f[k])));
    out->items.push_back(std::move(items));
  }
  return absl::OkStatus();
}

// Native format: each viewer's latest `holdout` share of positive events (by time)
// becomes its test set; everything else trains.
absl::Status SplitNative(ParsedDataset* d, double holdout, TestSet* test) {
  std::unordered_map<std::string, std::vector<size_t>> positives;
  for (size_t i = 0; i < d->events.size(); ++i) {
    const RawEvent& e = d->events[i];
    auto a = ParseAction(e.action);
    if (!a) return absl::InvalidArgumentError(d->events_where.At(i) + ": unknown action '" + e.action + "'");
    double w = e.weight ? *e.weight : 1.0;
    if (IsPositive(*a) && *a != Action::kFollow && w > 0 && e.entity_id.size() && e.entity_id[0] == 'i')
      positives[e.viewer_id].push_back(i);
  }
  std::vector<bool> held(d->events.size(), false);
  std::vector<std::string> viewers;
  for (auto& [v, idx] : positives) viewers.push_back(v);
  std::sort(viewers.begin(), viewers.end());
  for (const auto& v : viewers) {
    auto& idx = positives[v];
    if (idx.size() < 5) continue;
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return *d->events[a].ts < *d->events[b].ts; });
    size_t n_test = std::max<size_t>(1, size_t(std::floor(double(idx.size()) * holdout)));
    std::unordered_set<std::string> train_items;
    for (size_t j = 0; j + n_test < idx.size(); ++j) train_items.insert(d->events[idx[j]].entity_id);
    std::vector<std::string> items;
    for (size_t j = idx.size() - n_test; j < idx.size(); ++j) {
      held[idx[j]] = true;
      const std::string& item = d->events[idx[j]].entity_id;
      if (!train_items.count(item) && std::find(items.begin(), items.end(), item) == items.end()) items.push_back(item);
    }
    if (items.empty()) continue;
    test->users.push_back(v);
    test->items.push_back(std::move(items));
  }
  DropHeld(d, held);
  return absl::OkStatus();
}

uint64_t XorShift(uint64_t& x) {
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return x;
}

// Link prediction: a seeded `share` of undirected follow pairs is held out (both
// directions); each node's held-out partners are its test set.
absl::Status SplitEdges(ParsedDataset* d, double share, TestSet* test) {
  std::unordered_map<std::string, std::vector<size_t>> pair_events;  // "a b" with a < b
  std::vector<std::string> pairs;
  for (size_t i = 0; i < d->events.size(); ++i) {
    if (d->events[i].action != "follow") continue;
    const auto& a = d->events[i].viewer_id;
    const auto& b = d->events[i].entity_id;
    std::string key = a < b ? a + " " + b : b + " " + a;
    auto [it, inserted] = pair_events.try_emplace(key);
    if (inserted) pairs.push_back(key);
    it->second.push_back(i);
  }
  std::sort(pairs.begin(), pairs.end());
  uint64_t rng = 0x5eed1e55ull;
  for (size_t j = pairs.size(); j > 1; --j) std::swap(pairs[j - 1], pairs[XorShift(rng) % j]);
  size_t n_hold = size_t(double(pairs.size()) * share);
  std::vector<bool> held(d->events.size(), false);
  std::map<std::string, std::vector<std::string>> per_node;
  for (size_t j = 0; j < n_hold; ++j) {
    for (size_t i : pair_events[pairs[j]]) held[i] = true;
    auto sp = pairs[j].find(' ');
    std::string a = pairs[j].substr(0, sp), b = pairs[j].substr(sp + 1);
    per_node[a].push_back(b);
    per_node[b].push_back(a);
  }
  for (auto& [node, partners] : per_node) {
    test->users.push_back(node);
    test->items.push_back(std::move(partners));
  }
  DropHeld(d, held);
  return absl::OkStatus();
}

// Holds out a seeded random `share` of each user's events that `eligible` accepts
// (users with fewer than 3 such events keep them all).
template <typename Pred>
void HoldOutPerUser(ParsedDataset* d, double share, uint64_t seed, Pred eligible, TestSet* test, bool latest = false) {
  std::unordered_map<std::string, std::vector<size_t>> by_user;
  std::vector<std::string> order;  // users in order of first appearance
  for (size_t i = 0; i < d->events.size(); ++i) {
    if (!eligible(d->events[i])) continue;
    auto [it, inserted] = by_user.try_emplace(d->events[i].viewer_id);
    if (inserted) order.push_back(d->events[i].viewer_id);
    it->second.push_back(i);
  }
  std::vector<bool> held(d->events.size(), false);
  uint64_t rng = seed;
  for (const auto& user : order) {
    auto& idx = by_user[user];
    if (idx.size() < 3) continue;
    if (latest) {
      std::reverse(idx.begin(), idx.end());  // the latest first (events are in time order)
    } else {
      for (size_t j = idx.size() - 1; j > 0; --j) std::swap(idx[j], idx[XorShift(rng) % (j + 1)]);
    }
    size_t n = std::max<size_t>(1, size_t(double(idx.size()) * share));
    std::vector<std::string> items;
    for (size_t j = 0; j < n; ++j) {
      held[idx[j]] = true;
      items.push_back(d->events[idx[j]].entity_id);
    }
    test->users.push_back(user);
    test->items.push_back(std::move(items));
  }
  DropHeld(d, held);
}

// Creators: a seeded `share` of each user's plays is held out.
absl::Status SplitPlays(ParsedDataset* d, double share, TestSet* test) {
  HoldOutPerUser(d, share, 0x9e3779b9ull, [](const RawEvent& e) { return e.action == "play"; }, test);
  return absl::OkStatus();
}

// Common-neighbour and Adamic-Adar rankings over the (undirected) training follow
// graph, scored with the same metric functions.

}  // namespace

// Holds out a share of each user's training interactions: by default the latest
// `share` of each line (LightGCN lines list a user's interactions in time order,
// and the test items lean towards the end of the line, docs/evaluation.md, so a
// time-like slice is what tuning needs); with latest = false a seeded random one.
absl::Status SplitValidation(ParsedDataset* d, double share, TestSet* test, bool latest, uint64_t seed) {
  if (share >= 1) return absl::InvalidArgumentError("--validation must be below 1");
  HoldOutPerUser(d, share, seed, [](const RawEvent&) { return true; }, test, latest);
  return absl::OkStatus();
}

absl::Status LoadEvalData(const EvalOptions& o, int64_t now, ParsedDataset* dp, TestSet* testp, Kind* targetp,
                          bool* strip) {
  ParsedDataset& d = *dp;
  TestSet& test = *testp;
  Kind& target = *targetp;
  bool& strip_prefix = *strip;
  strip_prefix = false;
  target = Kind::kItem;
  if (o.format == "lightgcn") {
    AFF_RETURN_IF_ERROR(ParseLightgcn(o.train, now, &d));
    if (o.validation > 0) {
      AFF_RETURN_IF_ERROR(SplitValidation(&d, o.validation, &test, o.validation_order == "latest", 0x5eed0a11ull));
    } else {
      if (o.test.empty()) return absl::InvalidArgumentError("--test is required for --format lightgcn");
      AFF_RETURN_IF_ERROR(ParseLightgcnTest(o.test, &test));
    }
    strip_prefix = true;
  } else if (o.format == "native" || o.format == "synthetic") {
    AFF_RETURN_IF_ERROR(ParseNative(o.train, &d));
    AFF_RETURN_IF_ERROR(SplitNative(&d, o.holdout, &test));
  } else if (o.format == "snap-edges") {
    AFF_RETURN_IF_ERROR(ParseSnapEdges(o.train, now, &d));
    AFF_RETURN_IF_ERROR(SplitEdges(&d, o.holdout, &test));
    if (o.validation > 0) {  // tune on a slice of the training graph, never on the test edges
      test = TestSet();
      AFF_RETURN_IF_ERROR(SplitEdges(&d, o.validation, &test));
    }
    target = Kind::kUser;
    strip_prefix = true;
  } else if (o.format == "hetrec-lastfm") {
    AFF_RETURN_IF_ERROR(ParseHetrecLastfm(o.train, now, &d));
    auto split = o.target == "users" ? &SplitEdges : &SplitPlays;
    if (o.target == "users") {
      target = Kind::kUser;
    } else if (o.target.empty() || o.target == "creators") {
      target = Kind::kCreator;
    } else {
      return absl::InvalidArgumentError("--target must be creators or users for hetrec-lastfm");
    }
    AFF_RETURN_IF_ERROR(split(&d, o.holdout, &test));
    if (o.validation > 0) {
      test = TestSet();
      AFF_RETURN_IF_ERROR(split(&d, o.validation, &test));
    }
  } else {
    return absl::InvalidArgumentError("--format must be lightgcn, native, snap-edges or hetrec-lastfm");
  }
  if (test.users.empty()) return absl::InvalidArgumentError("no test users in " + (o.test.empty() ? o.train : o.test));
  return absl::OkStatus();
}

}  // namespace affinity::eval_internal
