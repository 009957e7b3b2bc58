// A small learned ranker trained on random rows (30 groups of 10, 5 trees):
// what registry, watcher and runbook tests need when any real model will do.
#pragma once

#include <memory>
#include <random>
#include <vector>

#include "ranking/learned_ranker.h"

namespace affinity::testing {

inline std::unique_ptr<LearnedRanker> TinyModel(int seed) {
  std::mt19937 rng{unsigned(seed)};
  std::uniform_real_distribution<float> u(0, 1);
  std::vector<float> x, y;
  std::vector<unsigned> groups;
  for (int g = 0; g < 30; ++g) {
    for (int r = 0; r < 10; ++r) {
      for (int j = 0; j < kNumRankInputs; ++j) x.push_back(u(rng));
      y.push_back(x[x.size() - kNumRankInputs + 3] > 0.7f ? 1.f : 0.f);
    }
    groups.push_back(10);
  }
  LearnedRankerOptions o;
  o.rounds = 5;
  auto model = LearnedRanker::Train(x, y, groups, o);
  return model.ok() ? std::move(*model) : nullptr;
}

}  // namespace affinity::testing
