#include "ranking/tree_ensemble.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace affinity {
namespace {

// Two trees over 3 inputs, in XGBoost's JSON layout. Tree 0 splits input 1 at 2
// (missing goes left) into a leaf 0.3 (cover 3) and a split of input 0 at 1 into
// leaves -0.2 and 0.4 (cover 1 each); tree 1 is a single leaf 0.05.
std::string HandModel(const std::string& split_type = "[0, 0, 0, 0, 0]", int feature0 = 1) {
  return R"({"learner": {"learner_model_param": {"base_score": "5E-1"},
    "gradient_booster": {"name": "gbtree", "model": {"trees": [
      {"left_children": [1, -1, 3, -1, -1], "right_children": [2, -1, 4, -1, -1],
       "split_indices": [)" + std::to_string(feature0) + R"(, 0, 0, 0, 0], "split_conditions": [2.0, 0.3, 1.0, -0.2, 0.4],
       "sum_hessian": [5, 3, 2, 1, 1], "default_left": [1, 0, 0, 0, 0], "split_type": )" + split_type + R"(},
      {"left_children": [-1], "right_children": [-1], "split_indices": [0], "split_conditions": [0.05],
       "sum_hessian": [5], "default_left": [0], "split_type": [0]}]}}}})";
}

TEST(TreeEnsembleTest, ScoresARowByItsLeavesPlusTheMargin) {
  auto e = TreeEnsemble::Parse(HandModel(), 3);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->num_trees(), 2u);
  EXPECT_FLOAT_EQ(e->base_score(), 0.5f);
  const float right_then_left[] = {0.5f, 3.f, 9.f};
  EXPECT_NEAR(e->Predict(right_then_left, 1.f), 1.f - 0.2f + 0.05f, 1e-6);
  const float right_then_right[] = {1.f, 2.f, 0.f};  // thresholds send equal values right
  EXPECT_NEAR(e->Predict(right_then_right, 0.f), 0.4f + 0.05f, 1e-6);
  const float missing[] = {5.f, NAN, 0.f};  // input 1 missing: the default (left) branch
  EXPECT_NEAR(e->Predict(missing, 0.f), 0.3f + 0.05f, 1e-6);
}

TEST(TreeEnsembleTest, PathAttributionsCreditEachSplitWithTheChangeInMeanValue) {
  auto e = *TreeEnsemble::Parse(HandModel(), 3);
  const float x[] = {0.5f, 3.f, 9.f};
  float out[4];
  e.Attribute(x, 1.f, out);
  // Root mean (0.3*3 + 0.1*2)/5 = 0.22; the right child's mean (-0.2 + 0.4)/2 = 0.1.
  EXPECT_NEAR(out[3], 1.f + 0.22f + 0.05f, 1e-6);  // bias: margin + the trees' root means
  EXPECT_NEAR(out[1], 0.1f - 0.22f, 1e-6);         // input 1 moved the path to the right child
  EXPECT_NEAR(out[0], -0.2f - 0.1f, 1e-6);         // input 0 chose the -0.2 leaf
  EXPECT_FLOAT_EQ(out[2], 0.f);                    // input 2 is never split on
  EXPECT_NEAR(out[0] + out[1] + out[2] + out[3], e.Predict(x, 1.f), 1e-6);
}

TEST(TreeEnsembleTest, RefusesModelsItCannotEvaluateFaithfully) {
  EXPECT_FALSE(TreeEnsemble::Parse("{", 3).ok());
  EXPECT_FALSE(TreeEnsemble::Parse(R"({"learner": {}})", 3).ok());
  EXPECT_FALSE(TreeEnsemble::Parse(HandModel("[1, 0, 0, 0, 0]"), 3).ok());  // categorical split
  EXPECT_FALSE(TreeEnsemble::Parse(HandModel("[0, 0, 0, 0, 0]", 7), 3).ok());  // input 7 of 3
  EXPECT_FALSE(TreeEnsemble::Parse(HandModel(), 1).ok());  // input 1 of 1
}

}  // namespace
}  // namespace affinity
