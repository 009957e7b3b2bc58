#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <set>

#include "absl/strings/str_cat.h"
#include "eval/evaluator.h"
#include "eval/metrics.h"
#include "testing/temp_dir.h"

namespace affinity {
namespace {

using testing::TempDir;

TEST(MetricsTest, HandComputedRecallPrecisionNdcgAndAp) {
  // Ranked 10, 20, 30, 40; relevant {20, 40, 99}; k = 4.
  UserMetrics m = ComputeUserMetrics({10, 20, 30, 40}, {20, 40, 99}, 4);
  EXPECT_DOUBLE_EQ(m.recall, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.precision, 0.5);
  double dcg = 1 / std::log2(3.0) + 1 / std::log2(5.0);
  double idcg = 1 + 1 / std::log2(3.0) + 1 / std::log2(4.0);
  EXPECT_NEAR(m.ndcg, dcg / idcg, 1e-12);
  EXPECT_NEAR(m.ap, (1.0 / 2 + 2.0 / 4) / 3.0, 1e-12);
  EXPECT_EQ(m.hit, 1);
}

TEST(MetricsTest, IdealDcgUsesMinOfKAndTestSize) {
  // One relevant item at rank 1 with k = 20: NDCG is exactly 1.
  UserMetrics m = ComputeUserMetrics({7, 1, 2}, {7}, 20);
  EXPECT_DOUBLE_EQ(m.ndcg, 1.0);
  EXPECT_DOUBLE_EQ(m.recall, 1.0);
  EXPECT_DOUBLE_EQ(m.precision, 1.0 / 20);
}

TEST(MetricsTest, OnlyTheFirstKCount) {
  UserMetrics m = ComputeUserMetrics({1, 2, 3}, {3}, 2);
  EXPECT_EQ(m.recall, 0);
  EXPECT_EQ(m.hit, 0);
}

TEST(MetricsTest, GiniOfEqualAndConcentratedExposure) {
  EXPECT_NEAR(Gini({5, 5, 5, 5}), 0.0, 1e-12);
  EXPECT_NEAR(Gini({0, 0, 0, 10}), 0.75, 1e-12);
}

void Write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// Two disjoint taste groups: users 0-5 share items 0-5, users 6-11 items 6-11.
// Each user's test item is one the rest of the group has, so a recommender that
// follows co-engagement must put it in the top 3.
void WriteGroups(const TempDir& dir) {
  std::string train, test;
  for (int u = 0; u < 12; ++u) {
    int base = u < 6 ? 0 : 6;
    int held = base + u % 6;
    train += std::to_string(u);
    for (int i = base; i < base + 6; ++i)
      if (i != held) absl::StrAppend(&train, " ", i);
    train += "\n";
    test += std::to_string(u) + " " + std::to_string(held) + "\n";
  }
  Write(dir / "train.txt", train);
  Write(dir / "test.txt", test);
}

EvalOptions GroupsEval(const TempDir& dir, int k) {
  EvalOptions o;
  o.format = "lightgcn";
  o.train = dir / "train.txt";
  o.test = dir / "test.txt";
  o.k = k;
  o.config.batch.als_factors = 4;
  return o;
}

TEST(EvaluatorTest, TinyDatasetEndToEndFindsTheHeldOutItems) {
  TempDir dir;
  WriteGroups(dir);
  EvalOptions o = GroupsEval(dir, 3);
  auto r = RunEval(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->users, 12);
  EXPECT_DOUBLE_EQ(r->at_k.recall, 1.0);
  EXPECT_DOUBLE_EQ(r->at_k.hit, 1.0);
  // Train items are excluded: each user's list holds only its held-out item from
  // its own group (the other group's items can fill the rest).
  for (const auto& [user, items] : r->topk) {
    int u = std::stoi(user);
    ASSERT_FALSE(items.empty());
    EXPECT_EQ(std::stoi(items[0]), (u < 6 ? 0 : 6) + u % 6) << user;
  }
}

TEST(EvaluatorTest, MetricsAgreeWithARecomputationFromTopK) {
  TempDir dir;
  WriteGroups(dir);
  EvalOptions o = GroupsEval(dir, 2);
  auto r = RunEval(o);
  ASSERT_TRUE(r.ok());
  MetricSums sums;
  for (const auto& [user, items] : r->topk) {
    int u = std::stoi(user);
    std::vector<uint32_t> ranked;
    for (const auto& i : items) ranked.push_back(uint32_t(std::stoi(i)));
    sums.Add(ComputeUserMetrics(ranked, {uint32_t((u < 6 ? 0 : 6) + u % 6)}, 2));
  }
  EXPECT_NEAR(sums.Mean().recall, r->at_k.recall, 1e-12);
  EXPECT_NEAR(sums.Mean().ndcg, r->at_k.ndcg, 1e-12);
}

TEST(EvaluatorTest, RefusesUnparseableFilesNamingFileAndLine) {
  TempDir dir;
  Write(dir / "train.txt", "0 1 2\n1 2 3\n");
  Write(dir / "test.txt", "0 4\n1 five\n");
  EvalOptions o;
  o.format = "lightgcn";
  o.train = dir / "train.txt";
  o.test = dir / "test.txt";
  auto r = RunEval(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("test.txt:2"), std::string::npos) << r.status();
  Write(dir / "bad_train.txt", "0 1 x\n");
  o.train = dir / "bad_train.txt";
  r = RunEval(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("bad_train.txt:1"), std::string::npos) << r.status();
}

TEST(EvaluatorTest, ReportIsHtmlWithSvgPlots) {
  TempDir dir;
  WriteGroups(dir);
  EvalOptions o = GroupsEval(dir, 20);
  auto r = RunEval(o);
  ASSERT_TRUE(r.ok());
  std::string html = EvalReportHtml(*r);
  EXPECT_EQ(html.rfind("<!doctype html>", 0), 0u);
  EXPECT_GE(std::count(html.begin(), html.end(), '<') , 50);
  size_t svgs = 0;
  for (size_t p = html.find("<svg"); p != std::string::npos; p = html.find("<svg", p + 1)) ++svgs;
  EXPECT_EQ(svgs, 4u);
  // Beside the run: the popularity baseline and what produced it.
  EXPECT_NE(html.find("<td>popularity</td>"), std::string::npos);
  EXPECT_NE(html.find("<td>date</td>"), std::string::npos);
  EXPECT_NE(html.find("<td>configuration</td>"), std::string::npos);
  EXPECT_GE(r->at_k.ndcg, r->baselines.at("popularity").ndcg);
  // Axis ticks are round: each plot's ticks are 0, s, 2s, ... with s one of 1, 2,
  // 2.5 or 5 times a power of ten (not 0.107, 0.213, ...).
  for (size_t svg = html.find("<svg"); svg != std::string::npos; svg = html.find("<svg", svg + 1)) {
    const size_t end = html.find("</svg>", svg);
    std::vector<double> ticks;
    for (size_t p = html.find("text-anchor='end'>", svg); p < end; p = html.find("text-anchor='end'>", p + 1))
      ticks.push_back(std::stod(html.substr(p + 18, html.find('<', p + 18) - p - 18)));
    ASSERT_GE(ticks.size(), 3u);
    const double step = ticks[1] - ticks[0];
    const double mantissa = step / std::pow(10.0, std::floor(std::log10(step)));
    EXPECT_TRUE(std::fabs(mantissa - 1) < 1e-6 || std::fabs(mantissa - 2) < 1e-6 || std::fabs(mantissa - 2.5) < 1e-6 ||
                std::fabs(mantissa - 5) < 1e-6)
        << step;
    for (size_t i = 0; i < ticks.size(); ++i) EXPECT_NEAR(ticks[i], double(i) * step, 1e-9) << i;
  }
  std::string json = EvalJson(*r);
  for (const char* key : {"\"k\":20", "\"users\":12", "\"recall\"", "\"ndcg\"", "\"precision\"", "\"map\"", "\"coverage\"", "\"seconds\""})
    EXPECT_NE(json.find(key), std::string::npos) << key;
}

}  // namespace
}  // namespace affinity

namespace affinity {
namespace {

TEST(EvaluatorTest, LinkPredictionReportsGraphBaselinesOnTheSameSplit) {
  TempDir dir;
  // Two dense communities of 12 nodes joined by one bridge: held-out edges inside a
  // community are recoverable from common neighbours.
  std::string edges;
  for (int c = 0; c < 2; ++c)
    for (int a = 0; a < 12; ++a)
      for (int b = a + 1; b < 12; ++b) edges += std::to_string(c * 12 + a) + " " + std::to_string(c * 12 + b) + "\n";
  edges += "0 12\n";
  Write(dir / "edges.txt", edges);
  EvalOptions o;
  o.format = "snap-edges";
  o.train = dir / "edges.txt";
  o.k = 10;
  o.config.batch.als_factors = 4;
  auto r = RunEval(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->target, "users");
  ASSERT_EQ(r->baselines.size(), 3u);
  EXPECT_TRUE(r->baselines.count("popularity"));
  EXPECT_GT(r->baselines["common_neighbors"].recall, 0.9);
  EXPECT_GT(r->baselines["adamic_adar"].recall, 0.9);
  EXPECT_GT(r->at_k.recall, 0.9);
  EXPECT_NE(EvalJson(*r).find("\"adamic_adar\""), std::string::npos);
}

TEST(EvaluatorTest, LearnedRankerTrainsOnAValidationSliceAndRanks) {
  TempDir dir;
  WriteGroups(dir);
  EvalOptions o = GroupsEval(dir, 3);
  o.ranker = "learned";
  auto r = RunEval(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->ranker, "learned");
  EXPECT_GT(r->train_seconds, 0);
  EXPECT_EQ(r->users, 12);
  // Trained on a handful of validation groups, the toy ranker finds the
  // held-out item for half the users or more; which half moves with the run's
  // wall clock (the world's times are placed before it, and the decayed
  // counters keep seconds), 6 of 12 in most runs, more in some.
  EXPECT_GE(r->at_k.recall, 0.5);
}

TEST(EvaluatorTest, TwoTrainingSlicesGiveTheRankerMoreGroups) {
  TempDir dir;
  WriteGroups(dir);
  auto groups_with = [&](int slices, int random_slices) {
    EvalOptions o = GroupsEval(dir, 3);
    o.ranker = "learned";
    o.config.ranker.training_slices = slices;
    o.config.ranker.random_slices = random_slices;
    int groups = -1;
    auto r = RunEval(o, [&](const std::string& stage, int64_t, int64_t) {
      if (stage.rfind("training the ranker on ", 0) == 0) groups = std::stoi(stage.substr(23));
    });
    EXPECT_TRUE(r.ok()) << r.status();
    return groups;
  };
  const int one = groups_with(1, 0), two = groups_with(2, 0), with_random = groups_with(1, 1);
  EXPECT_GT(one, 0);
  EXPECT_GT(two, one);          // the second slice labels other interactions of the same users
  EXPECT_GT(with_random, one);  // so does a slice holding out a random share
}

TEST(EvaluatorTest, ValidationHoldsOutTheLatestOrARandomShareAndRefusesOtherOrders) {
  TempDir dir;
  WriteGroups(dir);
  auto held_out = [&](const std::string& order) {
    EvalOptions o = GroupsEval(dir, 3);
    o.validation = 0.5;
    o.validation_order = order;
    return RunEval(o);
  };
  auto latest = held_out("latest"), random = held_out("random");
  ASSERT_TRUE(latest.ok()) << latest.status();
  ASSERT_TRUE(random.ok()) << random.status();
  EXPECT_EQ(latest->users, 12);
  EXPECT_EQ(latest->users, random->users);
  // Each line has 5 items; 0.5 holds out 2. The first 3 stay engaged under
  // "latest" (so never recommended); a random share frees some of them.
  auto first_three = [](int u) {
    std::set<int> s;
    const int base = u < 6 ? 0 : 6, held = base + u % 6;
    for (int i = base; i < base + 6 && s.size() < 3; ++i)
      if (i != held) s.insert(i);
    return s;
  };
  auto recommends_an_early_item = [&](const EvalResult& r) {
    int n = 0;
    for (const auto& [user, items] : r.topk) {
      auto early = first_three(std::stoi(user));
      for (const auto& i : items) n += early.count(std::stoi(i));
    }
    return n;
  };
  EXPECT_EQ(recommends_an_early_item(*latest), 0);
  EXPECT_GT(recommends_an_early_item(*random), 0);
  auto bad = held_out("oldest");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--validation-order"), std::string::npos);
  EvalOptions edges = GroupsEval(dir, 3);
  edges.format = "snap-edges";
  edges.validation = 0.5;
  edges.validation_order = "random";
  auto other_format = RunEval(edges);
  ASSERT_FALSE(other_format.ok());
  EXPECT_NE(other_format.status().message().find("lightgcn only"), std::string::npos) << other_format.status();
}

TEST(EvaluatorTest, UnknownFormatAndTargetAreRefused) {
  EvalOptions o;
  o.format = "csv";
  o.train = "/nonexistent";
  EXPECT_FALSE(RunEval(o).ok());
  o.format = "lightgcn";
  o.ranker = "sideways";
  auto r = RunEval(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("learned or off"), std::string::npos);
}

}  // namespace
}  // namespace affinity
