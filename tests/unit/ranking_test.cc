#include <gtest/gtest.h>

#include <random>

#include "batch/pipeline.h"
#include "ranking/learned_ranker.h"
#include "serving/query_engine.h"
#include "testing/small_snapshot.h"
#include "testing/world.h"

namespace affinity {
namespace {

// Groups of 20 rows; a row is relevant when input 3 (co_engagement) is high.
void Synthetic(std::vector<float>* x, std::vector<float>* y, std::vector<unsigned>* groups, int n_groups) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0, 1);
  for (int g = 0; g < n_groups; ++g) {
    for (int r = 0; r < 20; ++r) {
      std::vector<float> row(LearnedRanker::kNumInputs);
      for (auto& v : row) v = u(rng);
      x->insert(x->end(), row.begin(), row.end());
      y->push_back(row[3] > 0.8f ? 1.f : 0.f);
    }
    groups->push_back(20);
  }
}

TEST(LearnedRankerTest, LearnsTheSignalThatDecidesRelevance) {
  std::vector<float> x, y;
  std::vector<unsigned> groups;
  Synthetic(&x, &y, &groups, 200);
  LearnedRankerOptions o;
  o.rounds = 30;
  auto model = LearnedRanker::Train(x, y, groups, o);
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<float> hi(LearnedRanker::kNumInputs, 0.5f), lo = hi;
  hi[3] = 0.95f;
  lo[3] = 0.1f;
  std::vector<float> both = hi;
  both.insert(both.end(), lo.begin(), lo.end());
  auto p = (*model)->Predict(both.data(), 2);
  ASSERT_TRUE(p.ok());
  EXPECT_GT((*p)[0], (*p)[1]);
}

TEST(LearnedRankerTest, TreeShapContributionsAddUpToThePrediction) {
  std::vector<float> x, y;
  std::vector<unsigned> groups;
  Synthetic(&x, &y, &groups, 100);
  LearnedRankerOptions o;
  o.rounds = 20;
  auto model = *LearnedRanker::Train(x, y, groups, o);
  const size_t rows = 50;
  auto pred = *model->Predict(x.data(), rows);
  auto contrib = *model->Contributions(x.data(), rows);
  const size_t width = LearnedRanker::kNumInputs + 1;
  ASSERT_EQ(contrib.size(), rows * width);
  for (size_t r = 0; r < rows; ++r) {
    double sum = 0;
    for (size_t j = 0; j < width; ++j) sum += contrib[r * width + j];
    EXPECT_NEAR(sum, pred[r], 1e-3) << r;
  }
}

TEST(LearnedRankerTest, RefusesEmptyTrainingData) {
  EXPECT_FALSE(LearnedRanker::Train({}, {}, {}, {}).ok());
}

class LearnedQueryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    world_.BuildSmall();
    snapshot_ = testing::SmallSnapshot(world_);
    std::vector<float> x, y;
    std::vector<unsigned> groups;
    Synthetic(&x, &y, &groups, 50);
    LearnedRankerOptions lo;
    lo.rounds = 10;
    model_ = std::shared_ptr<const LearnedRanker>(std::move(*LearnedRanker::Train(x, y, groups, lo)));
  }
  testing::World world_;
  std::shared_ptr<Snapshot> snapshot_;
  std::shared_ptr<const LearnedRanker> model_;
};

TEST_F(LearnedQueryTest, LearnedScoresAreExplainedByExactTreeShap) {
  QueryEngine engine(world_.config.serving, &world_.registry, world_.live.get(), nullptr, nullptr, &world_.clock);
  engine.SetLearnedRanker(model_);
  QueryRequest q;
  q.viewer_id = "u0";
  q.k = 5;
  q.explain = ExplainMode::kFull;
  auto r = engine.QueryWith(q, snapshot_.get());
  ASSERT_TRUE(r.ok());
  ASSERT_FALSE(r->results.empty());
  EXPECT_EQ(r->model_version.rfind("lambdamart", 0), 0u) << r->model_version;
  for (const auto& res : r->results) {
    ASSERT_TRUE(res.learned);
    double sum = res.base;
    for (float c : res.input_contrib) sum += c;
    EXPECT_NEAR(sum, res.score, 1e-3);
  }
  JsonWriter w;
  engine.WriteJson(*r, ExplainMode::kFull, w);
  EXPECT_NE(w.str().find("\"method\":\"treeshap\""), std::string::npos);
}

TEST_F(LearnedQueryTest, ExpiredDeadlineFallsBackToTheBlendAndSaysSo) {
  testing::LeapingClock clock;
  QueryEngine engine(world_.config.serving, &world_.registry, world_.live.get(), nullptr, nullptr, &clock);
  engine.SetLearnedRanker(model_);
  QueryRequest q;
  q.viewer_id = "u0";
  auto r = engine.QueryWith(q, snapshot_.get());
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->ranker_fallback);
  EXPECT_EQ(r->model_version.rfind("blend", 0), 0u);
  ASSERT_FALSE(r->results.empty());
  for (const auto& res : r->results) EXPECT_FALSE(res.learned);
  JsonWriter w;
  engine.WriteJson(*r, ExplainMode::kTop, w);
  EXPECT_NE(w.str().find("\"ranker_fallback\":true"), std::string::npos);
}

TEST_F(LearnedQueryTest, RankerOffUsesTheBlend) {
  QueryEngine engine(world_.config.serving, &world_.registry, world_.live.get(), nullptr, nullptr, &world_.clock);
  engine.SetLearnedRanker(model_);
  QueryRequest q;
  q.viewer_id = "u0";
  q.ranker = "off";
  auto r = engine.QueryWith(q, snapshot_.get());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->model_version.rfind("blend", 0), 0u);
  for (const auto& res : r->results) EXPECT_FALSE(res.learned);
}

}  // namespace
}  // namespace affinity
