// Model drift: the population stability index and the two-sample KS test
// against values computed independently (by hand with Python's math module,
// and the Kolmogorov distribution's published critical values), and the
// monitor's verdict on served rows that did and did not move.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ranking/drift.h"
#include "serving/drift_service.h"
#include "testing/tiny_model.h"

namespace affinity {
namespace {

std::vector<float> Range(int from, int to) {
  std::vector<float> v;
  for (int i = from; i < to; ++i) v.push_back(float(i));
  return v;
}

TEST(DriftStatsTest, PsiMatchesHandComputedValues) {
  const std::vector<float> ref = Range(0, 1000);
  EXPECT_NEAR(PopulationStabilityIndex(ref, ref), 0.0, 1e-12);
  // Shifted by half a decile: shares 0.05 and 0.15 in the end bins.
  // Python: sum((c-r)*log(c/r)) = 0.05493061443340547
  EXPECT_NEAR(PopulationStabilityIndex(ref, Range(50, 1050)), 0.05493061443340547, 1e-9);
  // Everything in the lowest decile (empty bins floored at 1e-4):
  // 0.9*log(10) + 9*(1e-4-0.1)*log(1e-4/0.1) = 8.283089355027482
  EXPECT_NEAR(PopulationStabilityIndex(ref, Range(0, 100)), 8.283089355027482, 1e-9);
}

TEST(DriftStatsTest, KsStatisticAndPValueMatchTheKolmogorovTable) {
  EXPECT_DOUBLE_EQ(KsStatistic({1, 2, 3, 4}, {3, 4, 5, 6}), 0.5);  // by hand: after 2, F_a = 0.5, F_b = 0
  EXPECT_DOUBLE_EQ(KsStatistic({1, 2, 3}, {1, 2, 3}), 0.0);
  // The Kolmogorov distribution's critical values: P(K > 1.358) = 0.05, P(K > 1.628) = 0.01.
  const size_t n = 2000, m = 2000;
  const double ne = double(n) * double(m) / double(n + m);
  auto d_for = [&](double lambda) { return lambda / (std::sqrt(ne) + 0.12 + 0.11 / std::sqrt(ne)); };
  EXPECT_NEAR(KsPValue(d_for(1.358), n, m), 0.05, 0.001);
  EXPECT_NEAR(KsPValue(d_for(1.628), n, m), 0.01, 0.0005);
  EXPECT_DOUBLE_EQ(KsPValue(0, n, m), 1.0);
}

TEST(DriftMonitorTest, ShiftedServingRowsBreachAndUnchangedOnesDoNot) {
  std::mt19937_64 rng(3);
  std::normal_distribution<float> normal(0, 1);
  const size_t width = 3, rows = 4000;
  auto draw = [&](float shift) {
    std::vector<float> x(rows * width), scores(rows);
    for (size_t r = 0; r < rows; ++r) {
      for (size_t c = 0; c < width; ++c) x[r * width + c] = normal(rng) + (c == 1 ? shift : 0.f);
      scores[r] = x[r * width + 1] + 0.1f * normal(rng);
    }
    return std::make_pair(x, scores);
  };
  auto [tx, ts] = draw(0);
  const DriftReference ref = DriftReference::Build(tx.data(), width, ts.data(), rows, {1, 2}, {"a", "b", "c"});
  ASSERT_EQ(ref.signals.size(), 3u);
  EXPECT_EQ(ref.signals[1].name, "b");
  auto round_trip = DriftReference::FromJson(ref.ToJson());
  ASSERT_TRUE(round_trip.ok()) << round_trip.status();
  ASSERT_EQ(round_trip->signals[2].sample.size(), ref.signals[2].sample.size());
  for (size_t i = 0; i < ref.signals[2].sample.size(); ++i)  // kept to 7 significant digits
    EXPECT_NEAR(round_trip->signals[2].sample[i], ref.signals[2].sample[i], 1e-5) << i;
  DriftThresholds t;
  DriftMonitor same(ref), moved(ref);
  EXPECT_FALSE(same.Evaluate(t).enough);  // nothing served yet: no verdict
  auto [sx, ss] = draw(0);
  same.Observe(sx.data(), width, ss.data(), rows);
  auto [mx, ms] = draw(1.0f);  // input b (and so the score) moved by one standard deviation
  moved.Observe(mx.data(), width, ms.data(), rows);
  const DriftReport a = same.Evaluate(t), b = moved.Evaluate(t);
  EXPECT_EQ(a.rows, DriftMonitor::kWindow);
  EXPECT_FALSE(a.breach);
  for (const auto& s : a.signals) EXPECT_LT(s.psi, 0.05) << s.name;
  EXPECT_TRUE(b.breach);
  EXPECT_TRUE(b.signals[0].breach) << "score psi " << b.signals[0].psi;  // the score follows b
  EXPECT_TRUE(b.signals[1].breach) << "b psi " << b.signals[1].psi;
  EXPECT_FALSE(b.signals[2].breach) << "c did not move, psi " << b.signals[2].psi;
}

// The service a server runs: a model whose served rows move is reported as
// drifted once (the transition, which the server logs), and back once.
TEST(DriftServiceTest, AModelMovingOutOfAndBackIntoItsReferenceIsReportedOnEachTransition) {
  std::shared_ptr<LearnedRanker> model = testing::TinyModel(1);
  ASSERT_NE(model, nullptr);
  model->set_version("lambdamart-m000001");
  std::mt19937_64 rng(9);
  std::normal_distribution<float> normal(0, 1);
  const size_t w = kNumRankInputs, rows = 2000;
  auto draw = [&](float shift) {
    std::vector<float> x(rows * w), scores(rows);
    for (auto& v : x) v = normal(rng) + shift;
    for (auto& v : scores) v = normal(rng) + shift;
    return std::make_pair(x, scores);
  };
  auto [rx, rs] = draw(0);
  model->SetDriftReference(DriftReference::Build(rx.data(), w, rs.data(), rows, {0, 1}, RankerInputNames()));
  DriftService service([model] { return std::vector<std::shared_ptr<const LearnedRanker>>{model, nullptr}; },
                       DriftOptions{});
  auto [sx, ss] = draw(0);
  model->drift()->Observe(sx.data(), w, ss.data(), rows);
  EXPECT_FALSE(*service.Watch());  // within its thresholds: nothing to say
  auto [mx, ms] = draw(1.5f);
  model->drift()->Observe(mx.data(), w, ms.data(), rows);  // the whole window moved
  EXPECT_TRUE(*service.Watch());
  EXPECT_FALSE(*service.Watch());  // still drifted: said once
  const std::string json = service.Json();
  EXPECT_NE(json.find("\"model\":\"lambdamart-m000001\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"breach\":true"), std::string::npos) << json;
  auto [bx, bs] = draw(0);
  model->drift()->Observe(bx.data(), w, bs.data(), rows);
  EXPECT_TRUE(*service.Watch());  // back within: said once more
}

}  // namespace
}  // namespace affinity
