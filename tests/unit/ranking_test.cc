#include <gtest/gtest.h>
#include <xgboost/c_api.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <random>
#include <sstream>

#include "audit/audit_record.h"
#include "batch/pipeline.h"
#include "base/strings.h"
#include "ranking/learned_ranker.h"
#include "ranking/ranker_training.h"
#include "testing/temp_dir.h"
#include "query/response_json.h"
#include "serving/query_engine.h"
#include "testing/small_snapshot.h"
#include "testing/world.h"
#include "batch/batch_options.h"
#include "ranking/ranker_options.h"

namespace affinity {
namespace {

// Groups of 20 rows; a row is relevant when input 3 (co_engagement) is high.
void Synthetic(std::vector<float>* x, std::vector<float>* y, std::vector<unsigned>* groups, int n_groups) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0, 1);
  for (int g = 0; g < n_groups; ++g) {
    for (int r = 0; r < 20; ++r) {
      std::vector<float> row(kNumRankInputs);
      for (auto& v : row) v = u(rng);
      x->insert(x->end(), row.begin(), row.end());
      y->push_back(row[3] > 0.8f ? 1.f : 0.f);
    }
    groups->push_back(20);
  }
}

// A snapshot of a small world's log (4 factors) and a query for `viewer` that
// returns every result's ranker inputs (the blend ranks).
std::shared_ptr<Snapshot> SmallBatch(testing::World& world) {
  BatchOptions bo;
  bo.als_factors = 4;
  bo.hnsw_m = 8;
  return *BuildSnapshot(*world.store, world.registry, bo, world.clock.NowMillis(), nullptr);
}
absl::StatusOr<QueryResponse> QueryWithInputs(QueryEngine& engine, const Snapshot* snap, const std::string& viewer) {
  QueryRequest q;
  q.viewer_id = viewer;
  q.k = 10;
  q.ranker = RankerMode::kOff;
  q.want_inputs = true;
  return engine.QueryWith(q, snap);
}

TEST(LearnedRankerTest, LearnsTheSignalThatDecidesRelevance) {
  std::vector<float> x, y;
  std::vector<unsigned> groups;
  Synthetic(&x, &y, &groups, 200);
  LearnedRankerOptions o;
  o.rounds = 30;
  auto model = LearnedRanker::Train(x, y, groups, o);
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<float> hi(kNumRankInputs, 0.5f), lo = hi;
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
  const size_t width = kNumRankInputs + 1;
  ASSERT_EQ(contrib.size(), rows * width);
  for (size_t r = 0; r < rows; ++r) {
    double sum = 0;
    for (size_t j = 0; j < width; ++j) sum += contrib[r * width + j];
    EXPECT_NEAR(sum, pred[r], 1e-3) << r;
  }
}

// Rows whose label rewards being *far* from the viewer's newest interaction and
// low in the blend's order: what a monotone ranker must refuse to learn.
TEST(LearnedRankerTest, MonotoneRankerNeverScoresACandidateLowerForBeingCloserToTheNewest) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(0, 1);
  std::vector<float> x, y;
  std::vector<unsigned> groups;
  for (int g = 0; g < 200; ++g) {
    for (int r = 0; r < 20; ++r) {
      std::vector<float> row(kNumRankInputs);
      for (auto& v : row) v = u(rng);
      row[kInBlendRank] = float(r);
      x.insert(x.end(), row.begin(), row.end());
      y.push_back(row[kInCoengNewest] < 0.3f || r > 15 ? 1.f : 0.f);
    }
    groups.push_back(20);
  }
  auto sweep = [&](const LearnedRanker& m, int input, std::vector<float> base, const std::vector<float>& values) {
    std::vector<float> rows;
    for (float v : values) {
      base[input] = v;
      rows.insert(rows.end(), base.begin(), base.end());
    }
    return *m.Predict(rows.data(), values.size());
  };
  const std::vector<float> closeness = {0.f, 0.1f, 0.2f, 0.3f, 0.5f, 0.7f, 0.9f, 1.f};
  const std::vector<float> ranks = {0.f, 2.f, 5.f, 10.f, 15.f, 16.f, 18.f, 19.f};
  LearnedRankerOptions o;
  o.rounds = 30;
  o.monotone = false;
  auto free_model = *LearnedRanker::Train(x, y, groups, o);
  std::vector<float> mid(kNumRankInputs, 0.5f);
  auto f = sweep(*free_model, kInCoengNewest, mid, closeness);
  EXPECT_LT(f.back(), f.front());  // unconstrained, it learns the inverted signal
  o.monotone = true;
  auto model = *LearnedRanker::Train(x, y, groups, o);
  testing::TempDir saved;
  ASSERT_TRUE(model->Save(saved.path()).ok());
  EXPECT_NE(ReadFile(saved / "ranker.json")->find("\"monotone\":true"), std::string::npos);  // a model says how it was trained
  for (int probe = 0; probe < 20; ++probe) {
    std::vector<float> base(kNumRankInputs);
    for (auto& v : base) v = u(rng);
    auto p = sweep(*model, kInCoengNewest, base, closeness);
    for (size_t i = 1; i < p.size(); ++i) EXPECT_GE(p[i], p[i - 1]) << "closeness " << closeness[i];
    auto q = sweep(*model, kInBlendRank, base, ranks);
    for (size_t i = 1; i < q.size(); ++i) EXPECT_LE(q[i], q[i - 1]) << "blend rank " << ranks[i];
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
  WriteResponseJson(*r, ExplainMode::kFull, ResponseForm::kWire, false, w);
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
  WriteResponseJson(*r, ExplainMode::kTop, ResponseForm::kWire, false, w);
  EXPECT_NE(w.str().find("\"ranker_fallback\":true"), std::string::npos);
}

TEST_F(LearnedQueryTest, RankerOffUsesTheBlend) {
  QueryEngine engine(world_.config.serving, &world_.registry, world_.live.get(), nullptr, nullptr, &world_.clock);
  engine.SetLearnedRanker(model_);
  QueryRequest q;
  q.viewer_id = "u0";
  q.ranker = RankerMode::kOff;
  auto r = engine.QueryWith(q, snapshot_.get());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->model_version.rfind("blend", 0), 0u);
  for (const auto& res : r->results) EXPECT_FALSE(res.learned);
}

}  // namespace
}  // namespace affinity

namespace affinity {
namespace {

std::unique_ptr<LearnedRanker> SmallModel(int rounds = 10) {
  std::vector<float> x, y;
  std::vector<unsigned> groups;
  Synthetic(&x, &y, &groups, 60);
  LearnedRankerOptions o;
  o.rounds = rounds;
  return std::move(*LearnedRanker::Train(x, y, groups, o));
}

TEST(LearnedRankerTest, PathAttributionsAlsoAddUpToThePrediction) {
  auto model = SmallModel();
  std::vector<float> x, y;
  std::vector<unsigned> groups;
  Synthetic(&x, &y, &groups, 2);
  auto pred = *model->Predict(x.data(), 40);
  auto contrib = *model->Contributions(x.data(), 40, AttributionMethod::kSaabas);
  const size_t width = kNumRankInputs + 1;
  for (size_t r = 0; r < 40; ++r) {
    double sum = 0;
    for (size_t j = 0; j < width; ++j) sum += contrib[r * width + j];
    EXPECT_NEAR(sum, pred[r], 1e-3) << r;
  }
}

// The numbers of the first `"key":[...]` array in a JSON text, and where it lies.
std::vector<double> FirstArray(const std::string& json, const std::string& key, size_t* begin, size_t* end) {
  *begin = json.find('[', json.find("\"" + key + "\"")) + 1;
  *end = json.find(']', *begin);
  std::vector<double> v;
  std::stringstream in(json.substr(*begin, *end - *begin));
  for (std::string cell; std::getline(in, cell, ',');) v.push_back(std::stod(cell));
  return v;
}

TEST(LearnedRankerTest, RefusesTreesThatReadBackDifferentlyFromTheBoosterAndKeepsItsOwn) {
  auto model = SmallModel();
  std::vector<float> x, y;
  std::vector<unsigned> groups;
  Synthetic(&x, &y, &groups, 1);
  const float before = (*model->Predict(x.data(), 1))[0];
  const std::string json = *model->ModelJson();
  ASSERT_TRUE(model->UseTrees(json).ok());
  // Every leaf of the first tree raised by 0.5: a native reading that no longer
  // matches what XGBoost computes for the same booster.
  size_t lb, le, cb, ce;
  const std::vector<double> left = FirstArray(json, "left_children", &lb, &le);
  std::vector<double> cond = FirstArray(json, "split_conditions", &cb, &ce);
  ASSERT_EQ(left.size(), cond.size());
  ASSERT_GT(cond.size(), 1u);  // the tree splits
  std::string values;
  for (size_t i = 0; i < cond.size(); ++i) {
    if (left[i] < 0) cond[i] += 0.5;
    values += (i ? "," : "") + std::to_string(cond[i]);
  }
  const std::string tampered = json.substr(0, cb) + values + json.substr(ce);
  auto refused = model->UseTrees(tampered);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(refused.message().find("read back differently"), std::string::npos) << refused;
  EXPECT_FLOAT_EQ((*model->Predict(x.data(), 1))[0], before);  // still its own trees
  EXPECT_FALSE(model->UseTrees("{\"learner\": {}}").ok());
}

TEST(LearnedRankerTest, BlendScoreIsTheBaseMarginOfEveryRow) {
  // A model with no informative trees still orders rows by the blend score.
  LearnedRankerOptions o;
  o.rounds = 1;
  o.eta = 1e-6;
  std::vector<float> x(kNumRankInputs * 4, 0.f), y = {1, 0, 0, 0};
  for (int r = 0; r < 4; ++r) x[size_t(r) * kNumRankInputs + kInBlendScore] = float(r);
  auto model = *LearnedRanker::Train(x, y, {4}, o);
  auto p = *model->Predict(x.data(), 4);
  for (int r = 1; r < 4; ++r) EXPECT_NEAR(p[r] - p[r - 1], o.margin_scale, 1e-3);
}

TEST(LearnedRankerTest, WithoutABaseMarginScoresStartFromTheModelsBaseScore) {
  // margin_scale 0: no base margin, so the read-back trees must add XGBoost's
  // base score as XGBoost does (checked against it when the model is made).
  std::vector<float> x, y;
  std::vector<unsigned> groups;
  Synthetic(&x, &y, &groups, 60);
  LearnedRankerOptions o;
  o.rounds = 10;
  o.margin_scale = 0;
  auto model = LearnedRanker::Train(x, y, groups, o);
  ASSERT_TRUE(model.ok()) << model.status();
  auto pred = *(*model)->Predict(x.data(), 20);
  auto shap = *(*model)->Contributions(x.data(), 20, AttributionMethod::kTreeShap);  // XGBoost's own call
  const size_t width = kNumRankInputs + 1;
  for (size_t r = 0; r < 20; ++r) {
    double sum = 0;
    for (size_t j = 0; j < width; ++j) sum += shap[r * width + j];
    EXPECT_NEAR(sum, pred[r], 1e-4) << r;
  }
}

TEST(LearnedRankerTest, LoggedRowsRoundTripAndOlderRowsMissTheInputsAppendedSince) {
  std::vector<float> row(kNumRankInputs);
  for (size_t i = 0; i < row.size(); ++i) row[i] = float(i) * 0.5f - 3.f;
  row[1] = 1e-30f;
  std::vector<float> back;
  ASSERT_TRUE(DecodeRankerRow(EncodeRankerRow(row), &back));
  EXPECT_EQ(back, row);  // exact: the bytes of the floats
  // Logged before the last input existed: the same values, that one missing.
  std::vector<float> shorter(row.begin(), row.end() - 1);
  ASSERT_TRUE(DecodeRankerRow(EncodeRankerRow(shorter), &back));
  ASSERT_EQ(back.size(), size_t(kNumRankInputs));
  EXPECT_TRUE(std::equal(shorter.begin(), shorter.end(), back.begin()));
  EXPECT_TRUE(std::isnan(back.back()));
  // A newer build's row (more inputs than this build knows) or none: refused.
  std::vector<float> longer = row;
  longer.push_back(1.f);
  EXPECT_FALSE(DecodeRankerRow(EncodeRankerRow(longer), &back));
  EXPECT_FALSE(DecodeRankerRow(EncodeRankerRow({}), &back));
  EXPECT_FALSE(DecodeRankerRow("not base64!", &back));
}

TEST(LearnedRankerTest, SavedModelLoadsAndScoresTheSame) {
  testing::TempDir dir;
  auto model = SmallModel();
  ASSERT_TRUE(model->Save(dir / "m").ok());
  auto loaded = LearnedRanker::Load(dir / "m");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  std::vector<float> x, y;
  std::vector<unsigned> groups;
  Synthetic(&x, &y, &groups, 1);
  auto a = *model->Predict(x.data(), 20);
  auto b = *(*loaded)->Predict(x.data(), 20);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_FLOAT_EQ(a[i], b[i]);
  EXPECT_DOUBLE_EQ((*loaded)->margin_scale(), model->margin_scale());
}

TEST(LearnedRankerTest, LoadRefusesAModelTrainedOnOtherInputs) {
  testing::TempDir dir;
  ASSERT_TRUE(SmallModel()->Save(dir / "m").ok());
  std::string meta = *ReadFile(dir / "m/ranker.json");
  meta.replace(meta.find("embedding_dot"), 13, "something_new");
  ASSERT_TRUE(WriteFileAtomic(dir / "m/ranker.json", meta));
  auto loaded = LearnedRanker::Load(dir / "m");
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("different inputs"), std::string::npos);
}

TEST(RankerTrainingTest, GroupNdcgMatchesAHandComputedCase) {
  RankerRows rows;
  std::vector<float> x(size_t(3) * kNumRankInputs, 0.f);
  rows.AddGroup(x, {0, 1, 1}, 3);  // 3 relevant, 2 among the candidates
  // Order: row 1, row 0, row 2 -> hits at ranks 1 and 3.
  double ndcg = GroupNdcg(rows, {0.5f, 0.9f, 0.1f}, {0}, 20);
  double dcg = 1.0 + 1.0 / std::log2(4.0);
  double idcg = 1.0 + 1.0 / std::log2(3.0) + 1.0 / std::log2(4.0);
  EXPECT_NEAR(ndcg, dcg / idcg, 1e-9);
}

TEST(RankerTrainingTest, FitReportsHeldOutNdcgOfModelBlendAndCurrent) {
  // Relevance follows input 3; the blend score is noise.
  std::vector<float> x, y;
  std::vector<unsigned> groups;
  Synthetic(&x, &y, &groups, 300);
  RankerRows rows;
  const size_t w = kNumRankInputs;
  for (size_t g = 0; g < groups.size(); ++g)
    rows.AddGroup(std::vector<float>(x.begin() + g * 20 * w, x.begin() + (g + 1) * 20 * w),
                  std::vector<float>(y.begin() + g * 20, y.begin() + (g + 1) * 20));
  RankerOptions o;
  o.rounds = 20;
  o.threads = 2;
  auto current = SmallModel(2);
  auto fit = FitRanker(rows, o, 20, HoldoutRule(), CurrentModel{current.get(), {}});
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_GT(fit->validation_groups, 20u);
  EXPECT_GT(fit->train_groups, fit->validation_groups);
  EXPECT_GT(fit->ndcg_model, fit->ndcg_blend + 0.1);
  EXPECT_GE(fit->ndcg_current, 0.0);
  EXPECT_EQ(fit->compared_groups, fit->validation_groups);  // a model trained elsewhere saw none of them
  EXPECT_DOUBLE_EQ(fit->ndcg_compared, fit->ndcg_model);
  EXPECT_FALSE(FitRanker(RankerRows(), o).ok());
}

// Issue 23, bug 2: the split hashed a group's position, so every new group
// moved the others. Keyed by request id, a group keeps its side however many
// groups arrive before or after it.
TEST(RankerTrainingTest, HeldOutGroupsStayHeldOutAsGroupsAreAdded) {
  const HoldoutRule rule;
  std::vector<std::string> ids;
  for (int i = 0; i < 2000; ++i) ids.push_back("q_" + std::to_string(1000003 * i));
  size_t held = 0;
  for (const auto& id : ids) held += rule.HeldOut(GroupKey(id));
  EXPECT_NEAR(double(held) / double(ids.size()), rule.share, 0.03);
  // The same ids in another order, among others: the same verdicts.
  RankerRows before, after;
  const std::vector<float> x(kNumRankInputs, 0.f);
  for (size_t i = 0; i < 600; ++i) before.AddGroup(x, {1}, 0, GroupKey(ids[i]));
  for (size_t i = 660; i-- > 0;) after.AddGroup(x, {1}, 0, GroupKey(ids[i]));
  for (size_t i = 0; i < 600; ++i)
    EXPECT_EQ(rule.HeldOut(before.keys[i]), rule.HeldOut(after.keys[659 - i])) << ids[i];
  // Another seed is another split.
  HoldoutRule other;
  other.seed = 7;
  size_t differ = 0;
  for (const auto& id : ids) differ += rule.HeldOut(GroupKey(id)) != other.HeldOut(GroupKey(id));
  EXPECT_GT(differ, 200u);
}

// The current model is compared only on held-out groups it never trained on,
// and the new model on the same ones.
TEST(RankerTrainingTest, TheCurrentModelIsComparedOnlyOnGroupsItNeverSaw) {
  std::vector<float> x, y;
  std::vector<unsigned> groups;
  Synthetic(&x, &y, &groups, 300);
  RankerRows rows;
  const size_t w = kNumRankInputs;
  for (size_t g = 0; g < groups.size(); ++g)
    rows.AddGroup(std::vector<float>(x.begin() + g * 20 * w, x.begin() + (g + 1) * 20 * w),
                  std::vector<float>(y.begin() + g * 20, y.begin() + (g + 1) * 20), 0, GroupKey("r" + std::to_string(g)));
  RankerOptions o;
  o.rounds = 10;
  o.threads = 2;
  auto current = SmallModel(2);
  CurrentModel cur{current.get(), std::vector<char>(rows.groups.size(), 0)};
  for (size_t g = 0; g < cur.unseen.size(); g += 2) cur.unseen[g] = 1;  // it saw the odd ones
  const HoldoutRule rule;
  size_t expected = 0;
  for (size_t g = 0; g < rows.groups.size(); g += 2) expected += rule.HeldOut(rows.keys[g]);
  auto fit = FitRanker(rows, o, 20, rule, cur);
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_EQ(fit->compared_groups, expected);
  EXPECT_GE(fit->ndcg_current, 0.0);
  EXPECT_GE(fit->ndcg_compared, 0.0);
  // None unseen: no comparison, rather than one on its training data.
  std::fill(cur.unseen.begin(), cur.unseen.end(), 0);
  fit = FitRanker(rows, o, 20, rule, cur);
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_EQ(fit->compared_groups, 0u);
  EXPECT_EQ(fit->ndcg_current, -1);
}

// Issue 23, bug 3: the drift reference is what the monitor sees, the model's
// own best share of each held-out group (kTopRows of the rerank depth).
TEST(RankerTrainingTest, TheDriftReferenceHoldsTheHeldOutRowsTheBlendPlacedInItsBestRows) {
  std::vector<float> x, y;
  std::vector<unsigned> groups;
  Synthetic(&x, &y, &groups, 200);
  RankerRows rows;
  const size_t w = kNumRankInputs, len = 20;
  // Lists of 40 rows whose blend ranks run 0..39, as a served list's rows run
  // past the blend's best 20 when a policy reorders them.
  for (size_t g = 0; g + 1 < groups.size(); g += 2) {
    std::vector<float> gx(x.begin() + g * len * w, x.begin() + (g + 2) * len * w);
    for (size_t r = 0; r < 2 * len; ++r) gx[r * w + kInBlendRank] = float(r);
    rows.AddGroup(gx, std::vector<float>(y.begin() + g * len, y.begin() + (g + 2) * len));
  }
  RankerOptions o;
  o.rounds = 10;
  o.threads = 2;
  auto fit = FitRanker(rows, o);
  ASSERT_TRUE(fit.ok()) << fit.status();
  ASSERT_NE(fit->model->drift(), nullptr);
  const DriftReference& ref = fit->model->drift()->reference();
  EXPECT_EQ(ref.rows, fit->validation_groups * DriftMonitor::kTopRows) << "the blend's best 20 of each held-out list";
  // Its score sample is the model's scores of exactly those rows.
  std::vector<float> expected;
  size_t b = 0;
  for (size_t g = 0; g < rows.groups.size(); ++g) {
    if (HoldoutRule().HeldOut(rows.keys[g])) {
      auto p = fit->model->Predict(rows.x.data() + b * w, DriftMonitor::kTopRows);
      ASSERT_TRUE(p.ok());
      expected.insert(expected.end(), p->begin(), p->end());
    }
    b += rows.groups[g];
  }
  std::sort(expected.begin(), expected.end());
  const auto& score = ref.signals[0];
  ASSERT_EQ(score.sample.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_FLOAT_EQ(score.sample[i], expected[i]) << i;
}

// With the blend's head of each logged response (LoggedResponse::head), the
// reference is the model's scores of the head rows of held-out responses
// only: the rows its monitor will see, on responses it never trained on.
TEST(RankerTrainingTest, TheDriftReferenceIsTheModelsScoresOfTheHeldOutResponsesBlendHeads) {
  std::vector<float> x, y;
  std::vector<unsigned> groups;
  Synthetic(&x, &y, &groups, 200);
  RankerRows rows;
  const size_t w = kNumRankInputs, len = 20;
  std::mt19937_64 rng(3);
  std::normal_distribution<float> normal(0, 1);
  std::vector<std::vector<std::vector<float>>> heads;
  for (size_t g = 0; g < groups.size(); ++g) {
    rows.AddGroup(std::vector<float>(x.begin() + g * len * w, x.begin() + (g + 1) * len * w),
                  std::vector<float>(y.begin() + g * len, y.begin() + (g + 1) * len), 0, 1000 + g);
    std::vector<std::vector<float>> head(g % 3 + 1, std::vector<float>(w));
    for (auto& row : head)
      for (auto& v : row) v = normal(rng);
    rows.AddHead(head, 1000 + g);
    heads.push_back(head);
  }
  RankerOptions o;
  o.rounds = 10;
  o.threads = 2;
  auto fit = FitRanker(rows, o);
  ASSERT_TRUE(fit.ok()) << fit.status();
  ASSERT_NE(fit->model->drift(), nullptr);
  std::vector<float> expected;
  for (size_t g = 0; g < groups.size(); ++g) {
    if (!HoldoutRule().HeldOut(1000 + g)) continue;
    for (const auto& row : heads[g]) expected.push_back(fit->model->Predict(row.data(), 1).value()[0]);
  }
  ASSERT_FALSE(expected.empty());
  std::sort(expected.begin(), expected.end());
  const DriftReference& ref = fit->model->drift()->reference();
  EXPECT_EQ(ref.rows, expected.size());
  const auto& score = ref.signals[0];
  ASSERT_EQ(score.sample.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_FLOAT_EQ(score.sample[i], expected[i]) << i;
}

// Viewers u0-u3 go a, b, c in a few minutes; u4 has just engaged with a.
TEST(RankerInputsTest, SessionAndReverseCoEngagementComeFromTheNewestInteractions) {
  testing::World world;
  std::vector<RawEntity> ents;
  for (int u = 0; u < 5; ++u) ents.push_back({"u" + std::to_string(u), "user", "", "", ""});
  for (const char* i : {"a", "b", "c", "z"}) ents.push_back({i, "item", "", "", ""});
  world.Entities(ents);
  const int64_t t0 = world.clock.NowMillis() - 3'600'000, minute = 60'000;
  std::vector<RawEvent> evs;
  for (int u = 0; u < 4; ++u)
    for (int k = 0; k < 3; ++k) evs.push_back(testing::World::Ev("u" + std::to_string(u), std::string(1, char('a' + k)), "click", t0 + (u * 3 + k) * minute));
  evs.push_back(testing::World::Ev("u0", "z", "click", t0 - 2 * 86'400'000));  // z: co-engaged with a, in an older session
  evs.push_back(testing::World::Ev("u4", "a", "click", t0 + 50 * minute));
  ASSERT_TRUE(world.Events(evs).ok());
  auto snap = SmallBatch(world);
  QueryEngine engine(world.config.serving, &world.registry, world.live.get(), nullptr, nullptr, &world.clock);
  auto r = QueryWithInputs(engine, snap.get(), "u4");
  ASSERT_TRUE(r.ok()) << r.status();
  std::map<std::string, std::vector<float>> in;
  for (const auto& res : r->results) in[res.entity_id] = res.inputs;
  ASSERT_TRUE(in.count("b") && in.count("c") && in.count("z"));
  const KindSnapshot& ks = snap->kind(Kind::kItem);
  auto session_weight = [&](const char* from, const char* to) {
    const DenseId f = world.registry.Find(from)->id(), t = world.registry.Find(to)->id();
    for (uint32_t p = ks.seq_off[f]; p < ks.seq_off[f + 1]; ++p)
      if (ks.seq_ids[p] == t) return ks.seq_w[p];
    return 0.f;
  };
  EXPECT_FLOAT_EQ(in["b"][kInSessionNewest], session_weight("a", "b"));
  EXPECT_FLOAT_EQ(in["b"][kInSessionRecent], session_weight("a", "b"));  // the newest: no shrinking
  EXPECT_EQ(in["b"][kInSessionSupport], 1.f);
  EXPECT_GT(in["b"][kInSessionNewest], in["c"][kInSessionNewest]);  // two steps from a
  EXPECT_EQ(in["z"][kInSessionNewest], 0.f);
  EXPECT_EQ(in["z"][kInSessionSupport], 0.f);
  // b's own co-engagement list holds a, the viewer's one interaction.
  EXPECT_EQ(in["b"][kInCoengSupport], 1.f);  // one anchor, named in both its lists: counted once
  EXPECT_GT(in["b"][kInCoengReverse], 0.f);
  EXPECT_EQ(in["b"][kInCoengReverseSupport], 1.f);
  EXPECT_FLOAT_EQ(in["b"][kInCoengReverseRecent], in["b"][kInCoengReverse]);
}

}  // namespace
}  // namespace affinity

// The learned ranker's streaming inputs, models trained before them, and the
// point-in-time rule of training rows.
namespace affinity {
namespace {

// Items a, b (creator c0) and c (creator c1); u4 engaged with a 50 minutes in.
struct StreamWorld {
  testing::World world;
  std::shared_ptr<const Snapshot> snap;
  int64_t t0 = 0;
  StreamWorld() {
    world.live->SetCreatorOf([this](Ref r) { return r.kind() == Kind::kItem ? world.registry.CreatorOf(r) : Ref(); });
    std::vector<RawEntity> ents = {{"c0", "creator", "", "", ""}, {"c1", "creator", "", "", ""}};
    for (int u = 0; u < 5; ++u) ents.push_back({"u" + std::to_string(u), "user", "", "", ""});
    ents.push_back({"a", "item", "c0", "", ""});
    ents.push_back({"b", "item", "c0", "", ""});
    ents.push_back({"c", "item", "c1", "", ""});
    world.Entities(ents);
    t0 = world.clock.NowMillis() - 3'600'000;
    const int64_t minute = 60'000;
    std::vector<RawEvent> evs;
    for (int u = 0; u < 4; ++u)
      for (int k = 0; k < 3; ++k)
        evs.push_back(testing::World::Ev("u" + std::to_string(u), std::string(1, char('a' + k)), "click",
                                         t0 + (u * 3 + k) * minute));
    evs.push_back(testing::World::Ev("u4", "a", "click", t0 + 50 * minute));
    EXPECT_TRUE(world.Events(evs).ok());
    snap = SmallBatch(world);
  }
  QueryResponse Query(QueryEngine& engine) {
    auto r = QueryWithInputs(engine, snap.get(), "u4");
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : QueryResponse();
  }
};

TEST(RankerInputsTest, StreamingInputsAreTheLiveGroupsAsOfTheQuery) {
  StreamWorld w;
  QueryEngine engine(w.world.config.serving, &w.world.registry, w.world.live.get(), nullptr, nullptr, &w.world.clock);
  std::map<std::string, std::vector<float>> in;
  for (const auto& res : w.Query(engine).results) in[res.entity_id] = res.inputs;
  ASSERT_TRUE(in.count("b") && in.count("c"));
  const int64_t now = w.world.clock.NowMillis();
  const LiveState& live = *w.world.live;
  for (const char* id : {"b", "c"}) {
    const Ref r = *w.world.registry.Find(id);
    const auto counts = live.EntityCounts(r, now);
    EXPECT_FLOAT_EQ(in[id][kInEntityCount1h], std::log1p(float(counts[0]))) << id;
    EXPECT_FLOAT_EQ(in[id][kInEntityCount1d], std::log1p(float(counts[1]))) << id;
    EXPECT_FLOAT_EQ(in[id][kInEntityCount7d], std::log1p(float(counts[2]))) << id;
    EXPECT_FLOAT_EQ(in[id][kInEntityTrend], float(24.0 * counts[0] / counts[1])) << id;
    const auto creator = live.CreatorCounts(w.world.registry.CreatorOf(r), now);
    EXPECT_FLOAT_EQ(in[id][kInCreatorCount1d], std::log1p(float(creator[1]))) << id;
    EXPECT_FLOAT_EQ(in[id][kInCreatorVelocity], float(24.0 * creator[0] / creator[1])) << id;
    EXPECT_EQ(in[id][kInViewerEntityHours], -1.f) << id << ": never engaged by u4";
  }
  // u4 engaged with a, c0's item, 10 minutes before now: b shares that creator, c does not.
  EXPECT_FLOAT_EQ(in["b"][kInViewerCreatorEngagements], std::log1p(1.f));
  EXPECT_NEAR(in["b"][kInViewerCreatorHours], 10.0 / 60.0, 1e-4);
  EXPECT_EQ(in["c"][kInViewerCreatorEngagements], 0.f);
  EXPECT_EQ(in["c"][kInViewerCreatorHours], -1.f);
}

TEST(RankerInputsTest, ATrainingRowKeepsTheStreamingValuesOfItsResponseNotLaterOnes) {
  StreamWorld w;
  QueryEngine engine(w.world.config.serving, &w.world.registry, w.world.live.get(), nullptr, nullptr, &w.world.clock);
  QueryRequest q;
  q.viewer_id = "u4";
  q.want_inputs = true;
  const QueryResponse served = w.Query(engine);
  const std::string record = BuildAuditRecord(q, served, w.world.clock.NowMillis(), /*with_inputs=*/true);
  // b becomes popular after the response, and u4 engages with c1.
  std::vector<RawEvent> later;
  for (int u = 0; u < 4; ++u) later.push_back(testing::World::Ev("u" + std::to_string(u), "b", "like", w.world.clock.NowMillis()));
  later.push_back(testing::World::Ev("u4", "c", "click", w.world.clock.NowMillis()));
  ASSERT_TRUE(w.world.Events(later).ok());
  auto logged = ReadLoggedResponse(record);
  ASSERT_TRUE(logged.ok()) << logged.status();
  std::map<std::string, std::vector<float>> then, now;
  for (const auto& r : logged->results) then[r.entity_id] = r.inputs;
  for (const auto& r : served.results) now[r.entity_id] = r.inputs;
  for (const auto& r : w.Query(engine).results) now[r.entity_id + "'"] = r.inputs;
  ASSERT_TRUE(then.count("b") && now.count("b'"));
  EXPECT_EQ(then["b"], now["b"]) << "the logged row is the served one";
  EXPECT_GT(now["b'"][kInEntityCount1h], then["b"][kInEntityCount1h]) << "the later query sees the new events";
  EXPECT_EQ(then["c"][kInViewerEntityHours], -1.f);
}

// A model saved by a build with fewer inputs: its ranker.json names the first
// `width` of today's inputs. It is trained here through XGBoost's C API on
// rows of that width, as that build would have.
void SaveOlderModel(const std::string& dir, int width) {
  std::vector<float> x, y;
  std::vector<unsigned> groups;
  Synthetic(&x, &y, &groups, 60);
  const size_t rows = y.size();
  std::vector<float> narrow(rows * size_t(width));
  for (size_t r = 0; r < rows; ++r) std::copy_n(&x[r * kNumRankInputs], width, &narrow[r * size_t(width)]);
  DMatrixHandle m;
  ASSERT_EQ(XGDMatrixCreateFromMat(narrow.data(), rows, bst_ulong(width), NAN, &m), 0);
  ASSERT_EQ(XGDMatrixSetFloatInfo(m, "label", y.data(), rows), 0);
  ASSERT_EQ(XGDMatrixSetUIntInfo(m, "group", groups.data(), groups.size()), 0);
  BoosterHandle b;
  ASSERT_EQ(XGBoosterCreate(&m, 1, &b), 0);
  XGBoosterSetParam(b, "objective", "rank:pairwise");
  XGBoosterSetParam(b, "max_depth", "4");
  XGBoosterSetParam(b, "seed", "7");
  for (int i = 0; i < 10; ++i) ASSERT_EQ(XGBoosterUpdateOneIter(b, i, m), 0);
  std::filesystem::create_directories(dir);
  ASSERT_EQ(XGBoosterSaveModel(b, (dir + "/model.json").c_str()), 0);
  XGBoosterFree(b);
  XGDMatrixFree(m);
  std::string inputs;
  for (int f = 0; f < width; ++f) inputs += std::string(f ? "," : "") + "\"" + RankerInputNames()[size_t(f)] + "\"";
  ASSERT_TRUE(WriteFileAtomic(dir + "/ranker.json",
                              "{\"format\":1,\"objective\":\"rank:pairwise\",\"rounds\":10,\"max_depth\":4,\"eta\":0.3,"
                              "\"pair_samples\":1,\"margin_scale\":0,\"monotone\":false,\"inputs\":[" +
                                  inputs + "]}"));
}

TEST(LearnedRankerTest, AModelTrainedBeforeInputsWereAppendedStillLoadsAndScoresOnItsOwnColumns) {
  testing::TempDir dir;
  const int width = kInNewerThanSnapshot + 1;  // the inputs before the streaming groups
  SaveOlderModel(dir / "old", width);
  auto loaded = LearnedRanker::Load(dir / "old");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->width(), width);
  std::vector<float> x, y;
  std::vector<unsigned> groups;
  Synthetic(&x, &y, &groups, 1);
  const size_t rows = 20;
  auto base = *(*loaded)->Predict(x.data(), rows);
  // The appended columns change nothing for it.
  for (size_t r = 0; r < rows; ++r)
    for (int f = width; f < kNumRankInputs; ++f) x[r * kNumRankInputs + size_t(f)] = 1000.f + float(f);
  auto again = *(*loaded)->Predict(x.data(), rows);
  for (size_t r = 0; r < rows; ++r) EXPECT_FLOAT_EQ(base[r], again[r]);
  // Both attributions span every input of this build, zero on the new ones,
  // and add up to the prediction.
  for (AttributionMethod method : {AttributionMethod::kSaabas, AttributionMethod::kTreeShap}) {
    auto contrib = (*loaded)->Contributions(x.data(), rows, method);
    ASSERT_TRUE(contrib.ok()) << contrib.status();
    ASSERT_EQ(contrib->size(), rows * (kNumRankInputs + 1)) << AttributionMethodName(method);
    for (size_t r = 0; r < rows; ++r) {
      const float* c = contrib->data() + r * (kNumRankInputs + 1);
      double sum = 0;
      for (int f = 0; f <= kNumRankInputs; ++f) sum += c[f];
      for (int f = width; f < kNumRankInputs; ++f) EXPECT_EQ(c[f], 0.f) << AttributionMethodName(method) << " input " << f;
      EXPECT_NEAR(sum, base[r], 1e-3) << AttributionMethodName(method) << " row " << r;
    }
  }
  // Saved again, it still names its own inputs only.
  ASSERT_TRUE((*loaded)->Save(dir / "again").ok());
  auto reloaded = LearnedRanker::Load(dir / "again");
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_EQ((*reloaded)->width(), width);
  // Inputs that are not a prefix of this build's are refused.
  std::string meta = *ReadFile(dir / "old/ranker.json");
  meta.replace(meta.find("\"embedding_dot\""), 15, "\"blend_score\"");
  ASSERT_TRUE(WriteFileAtomic(dir / "old/ranker.json", meta));
  EXPECT_FALSE(LearnedRanker::Load(dir / "old").ok());
}

}  // namespace
}  // namespace affinity

namespace affinity {
namespace {

// Rows whose relevance follows input `signal`; every other input is noise.
RankerRows RowsDecidedBy(int signal, int n_groups) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(0, 1);
  RankerRows rows;
  for (int g = 0; g < n_groups; ++g) {
    std::vector<float> x, y;
    for (int r = 0; r < 20; ++r) {
      std::vector<float> row(kNumRankInputs);
      for (auto& v : row) v = u(rng);
      x.insert(x.end(), row.begin(), row.end());
      y.push_back(row[size_t(signal)] > 0.8f ? 1.f : 0.f);
    }
    rows.AddGroup(x, y);
  }
  return rows;
}

TEST(RankerTrainingTest, StreamingInputsAreKeptOnlyWhenTheyWinOnHeldOutGroups) {
  RankerOptions o;
  o.rounds = 20;
  o.threads = 2;
  o.margin_scale = 0;
  // Relevance follows a streaming input: the fit with them wins.
  const RankerRows by_stream = RowsDecidedBy(kInEntityCount1h, 150);
  auto fit = FitRanker(by_stream, o);
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_TRUE(fit->stream_inputs);
  EXPECT_GT(fit->ndcg_with_stream, fit->ndcg_without_stream + 0.1);
  EXPECT_EQ(fit->ndcg_model, fit->ndcg_with_stream);
  EXPECT_EQ(StreamInputsNote(*fit).rfind("used (held-out ndcg without", 0), 0u) << StreamInputsNote(*fit);
  // Relevance follows another input: the streaming ones are only noise, left out.
  const RankerRows by_other = RowsDecidedBy(3, 150);
  fit = FitRanker(by_other, o);
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_FALSE(fit->stream_inputs) << StreamInputsNote(*fit);
  EXPECT_GE(fit->ndcg_without_stream, fit->ndcg_with_stream);
  // A model fitted without them never reads them: changing them changes nothing.
  std::vector<float> row(kNumRankInputs, 0.5f), other = row;
  for (int f = kFirstStreamInput; f < kNumRankInputs; ++f) other[size_t(f)] = 0.99f;
  EXPECT_EQ((*fit->model->Predict(row.data(), 1))[0], (*fit->model->Predict(other.data(), 1))[0]);
  // Forced either way, one fit only.
  o.stream_inputs = StreamInputs::kOff;
  fit = FitRanker(by_stream, o);
  ASSERT_TRUE(fit.ok());
  EXPECT_FALSE(fit->stream_inputs);
  EXPECT_LT(fit->ndcg_with_stream, 0);
  o.stream_inputs = StreamInputs::kOn;
  fit = FitRanker(by_other, o);
  ASSERT_TRUE(fit.ok());
  EXPECT_TRUE(fit->stream_inputs);
  EXPECT_LT(fit->ndcg_without_stream, 0);
}

}  // namespace
}  // namespace affinity
