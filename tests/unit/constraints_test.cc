#include "ranking/constraints.h"

#include <gtest/gtest.h>

#include <map>

namespace affinity {
namespace {

std::vector<ConstraintCandidate> Ordered(int n, int creators, std::vector<std::vector<float>>* emb = nullptr) {
  std::vector<ConstraintCandidate> c;
  c.resize(size_t(n));
  for (int i = 0; i < n; ++i) {
    c[size_t(i)].score = 100.0 - i;
    c[size_t(i)].creator = Ref(Kind::kCreator, DenseId(i % creators));
    if (emb) c[size_t(i)].embedding = (*emb)[size_t(i)].data();
  }
  return c;
}

TEST(ConstraintsTest, WithoutConstraintsTheScoreOrderStands) {
  ConstraintOptions o;
  o.k = 5;
  o.per_creator_cap = 0;
  auto picks = ApplyConstraints(Ordered(10, 2), 0, o);
  ASSERT_EQ(picks.size(), 5u);
  for (uint32_t i = 0; i < 5; ++i) EXPECT_EQ(picks[i].index, i);
}

TEST(ConstraintsTest, NoCreatorExceedsTheCap) {
  ConstraintOptions o;
  o.k = 10;
  o.per_creator_cap = 3;
  auto cands = Ordered(40, 2);           // creators alternate: 0, 1, 0, 1, ...
  cands[20].creator = Ref(Kind::kCreator, 7);
  auto picks = ApplyConstraints(cands, 0, o);
  std::map<uint32_t, int> per;
  for (const auto& p : picks) per[cands[p.index].creator.bits]++;
  for (const auto& [c, n] : per) EXPECT_LE(n, 3);
  EXPECT_EQ(picks.size(), 7u);  // 3 + 3 + the one item of creator 7
}

TEST(ConstraintsTest, DiversityPrefersResultsUnlikeThoseAlreadyPicked) {
  // Items 0-4 point one way, 5-9 another; scores fall slowly.
  std::vector<std::vector<float>> emb(10);
  for (int i = 0; i < 10; ++i) emb[size_t(i)] = i < 5 ? std::vector<float>{1, 0} : std::vector<float>{0, 1};
  auto cands = Ordered(10, 10, &emb);
  ConstraintOptions o;
  o.k = 4;
  o.per_creator_cap = 0;
  auto plain = ApplyConstraints(cands, 2, o);
  int second_cluster = 0;
  for (const auto& p : plain) second_cluster += p.index >= 5;
  EXPECT_EQ(second_cluster, 0);
  o.diversity = 0.5;
  auto diverse = ApplyConstraints(cands, 2, o);
  ASSERT_EQ(diverse.size(), 4u);
  EXPECT_EQ(diverse[0].index, 0u);  // the best result always leads
  EXPECT_EQ(diverse[1].index, 5u);  // then the best of the other direction
  second_cluster = 0;
  for (const auto& p : diverse) second_cluster += p.index >= 5;
  EXPECT_EQ(second_cluster, 1);  // once both directions are shown, relevance decides
}

TEST(ConstraintsTest, NewCreatorsGetTheirShareOfSlots) {
  auto cands = Ordered(30, 30);
  for (int i : {12, 20, 25}) cands[size_t(i)].new_creator = true;
  ConstraintOptions o;
  o.k = 10;
  o.per_creator_cap = 0;
  o.new_creator_share = 0.2;  // 2 of 10
  auto picks = ApplyConstraints(cands, 0, o);
  ASSERT_EQ(picks.size(), 10u);
  int from_new = 0, floored = 0;
  for (const auto& p : picks) {
    from_new += cands[p.index].new_creator;
    floored += p.floor;
  }
  EXPECT_EQ(from_new, 2);
  EXPECT_EQ(floored, 2);
  // The best new-creator candidates, in place of the lowest-placed others.
  EXPECT_EQ(picks[8].index, 12u);
  EXPECT_EQ(picks[9].index, 20u);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(picks[size_t(i)].index, uint32_t(i));
}

TEST(ConstraintsTest, FloorTakesOnlyWhatTheCandidatesHold) {
  auto cands = Ordered(30, 30);
  cands[29].new_creator = true;
  ConstraintOptions o;
  o.k = 10;
  o.new_creator_share = 0.5;
  auto picks = ApplyConstraints(cands, 0, o);
  ASSERT_EQ(picks.size(), 10u);
  int from_new = 0;
  for (const auto& p : picks) from_new += cands[p.index].new_creator;
  EXPECT_EQ(from_new, 1);
}

TEST(ConstraintsTest, FloorRespectsTheCreatorCap) {
  auto cands = Ordered(30, 30);
  for (int i = 10; i < 20; ++i) {
    cands[size_t(i)].new_creator = true;
    cands[size_t(i)].creator = Ref(Kind::kCreator, 99);  // one new creator with many items
  }
  ConstraintOptions o;
  o.k = 10;
  o.per_creator_cap = 2;
  o.new_creator_share = 0.5;
  auto picks = ApplyConstraints(cands, 0, o);
  int from_new = 0;
  for (const auto& p : picks) from_new += cands[p.index].new_creator;
  EXPECT_EQ(from_new, 2);
}

// A short list keeps its best results: at the default share (0.1) the floor
// rounds down to no slot below k = 10, so a k = 1 list is the best candidate.
TEST(ConstraintsTest, FloorNeverTakesTheTopOfAShortList) {
  auto cands = Ordered(30, 30);
  for (int i = 3; i < 30; i += 3) cands[size_t(i)].new_creator = true;
  ConstraintOptions o;
  o.per_creator_cap = 0;
  o.new_creator_share = 0.1;
  for (int k : {1, 2, 5, 9}) {
    o.k = k;
    auto picks = ApplyConstraints(cands, 0, o);
    ASSERT_EQ(picks.size(), size_t(k));
    for (int i = 0; i < k; ++i) {
      EXPECT_EQ(picks[size_t(i)].index, uint32_t(i)) << "k=" << k;
      EXPECT_FALSE(picks[size_t(i)].floor) << "k=" << k;
    }
  }
  o.k = 10;  // the first reserved slot: the 10th
  auto with_new = Ordered(30, 30);
  with_new[20].new_creator = true;
  auto picks = ApplyConstraints(with_new, 0, o);
  ASSERT_EQ(picks.size(), 10u);
  EXPECT_TRUE(picks[9].floor);
  EXPECT_EQ(picks[9].index, 20u);
}

TEST(ConstraintsTest, FloorNeverDisplacesTheProtectedHead) {
  auto cands = Ordered(30, 30);
  for (int i = 10; i < 30; ++i) cands[size_t(i)].new_creator = true;
  ConstraintOptions o;
  o.k = 4;
  o.per_creator_cap = 0;
  o.new_creator_share = 1.0;  // asks for every slot; the head of three stays
  auto picks = ApplyConstraints(cands, 0, o);
  ASSERT_EQ(picks.size(), 4u);
  for (uint32_t i = 0; i < 3; ++i) {
    EXPECT_EQ(picks[i].index, i);
    EXPECT_FALSE(picks[i].floor);
  }
  EXPECT_TRUE(picks[3].floor);
  EXPECT_EQ(picks[3].index, 10u);
}

}  // namespace
}  // namespace affinity
