#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

#include "testing/world.h"

namespace affinity {
namespace {

using testing::World;

TEST(IngestorTest, BatchWithOneInvalidEventIsRejectedWholeAndNamesIt) {
  World w;
  w.BuildSmall();
  uint64_t before = w.store->NextOffset();
  uint64_t users_before = w.registry.Count(Kind::kUser);
  auto s = w.Events({World::Ev("newbie", "i1", "click"), World::Ev("u1", "i2", "teleport")});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("events[1]"), std::string::npos) << s;
  EXPECT_NE(s.message().find("teleport"), std::string::npos);
  EXPECT_EQ(w.store->NextOffset(), before);
  EXPECT_EQ(w.registry.Count(Kind::kUser), users_before);
  EXPECT_FALSE(w.registry.Find("newbie"));
}

TEST(IngestorTest, UnknownEntityIsRejectedWithAnActionableMessage) {
  World w;
  w.BuildSmall();
  auto s = w.Events({World::Ev("u1", "ghost", "click")});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("POST /affinity/entities"), std::string::npos);
}

TEST(IngestorTest, FollowingAnItemIsRejected) {
  World w;
  w.BuildSmall();
  EXPECT_FALSE(w.Events({World::Ev("u1", "i1", "follow")}).ok());
}

TEST(IngestorTest, NonFiniteWeightAndFarFutureTimestampAreRejected) {
  World w;
  w.BuildSmall();
  auto e = World::Ev("u1", "i1", "click");
  e.weight = std::numeric_limits<double>::infinity();
  EXPECT_FALSE(w.Events({e}).ok());
  auto f = World::Ev("u1", "i1", "click", w.clock.NowMillis() + 3LL * 86400 * 1000);
  EXPECT_FALSE(w.Events({f}).ok());
}

TEST(IngestorTest, TimestampsBefore1990AreRefusedAsImplausible) {
  World w;
  w.BuildSmall();
  for (int64_t ts : {int64_t(1), int64_t(1'767'225'600) /* seconds */, int64_t(631'151'999'999)}) {
    auto s = w.Events({World::Ev("u1", "i3", "click", ts)});
    ASSERT_FALSE(s.ok()) << ts;
    EXPECT_NE(s.message().find("before 1990"), std::string::npos) << s;
  }
  EXPECT_TRUE(w.Events({World::Ev("u1", "i3", "click", 631'152'000'000)}).ok());
}

TEST(IngestorTest, AnExplicitWeightMustAgreeWithItsActionsSign) {
  World w;
  w.BuildSmall();
  const uint64_t before = w.store->NextOffset();
  auto like = World::Ev("u1", "i3", "like");
  like.weight = -1000;
  auto s = w.Events({World::Ev("u1", "i4", "click"), like});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("events[1]: weight -1000 is negative"), std::string::npos) << s;
  auto hide = World::Ev("u1", "i3", "hide");
  hide.weight = 2;
  s = w.Events({hide});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("is positive"), std::string::npos) << s;
  EXPECT_EQ(w.store->NextOffset(), before) << "a refused batch wrote something";
  hide.weight = -2;
  like.weight = 0.5;
  auto impression = World::Ev("u1", "i5", "impression");
  impression.weight = 0;
  EXPECT_TRUE(w.Events({hide, like, impression}).ok());
}

TEST(IngestorTest, EventsOlderThanTheEventRetentionAreRefusedWholeAndNamed) {
  constexpr int64_t kDay = 24 * 3'600'000;
  World w(30 * kDay);
  w.BuildSmall();
  const uint64_t before = w.store->NextOffset();
  const int64_t now = w.clock.NowMillis();
  auto s = w.Events({World::Ev("u1", "i1", "click", now - kDay), World::Ev("u1", "i2", "click", now - 31 * kDay)});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("events[1]"), std::string::npos) << s;
  EXPECT_NE(s.message().find("events.retention_hours (720 h)"), std::string::npos) << s;
  EXPECT_EQ(w.store->NextOffset(), before);
  EXPECT_TRUE(w.Events({World::Ev("u1", "i1", "click", now - 29 * kDay)}).ok());
  EXPECT_EQ(w.store->NextOffset(), before + 1);
}

TEST(IngestorTest, UnknownViewerIsRegisteredAsUser) {
  World w;
  w.BuildSmall();
  ASSERT_TRUE(w.Events({World::Ev("fresh", "i3", "like")}).ok());
  auto r = w.registry.Find("fresh");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind(), Kind::kUser);
  EXPECT_EQ(w.live->Viewer(*r)->recent.size(), 1u);
}

TEST(IngestorTest, ActionWithoutWeightTakesTheConfiguredDefault) {
  World w;
  w.BuildSmall();
  auto e = World::Ev("u3", "i4", "like");
  ASSERT_TRUE(w.Events({e}).ok());
  Event last;
  ASSERT_TRUE(w.store->ScanEvents([&](const Event& ev) { last = ev; return true; }).ok());
  EXPECT_FLOAT_EQ(last.weight, float(w.config.actions.like));
}

TEST(IngestorTest, HideFollowAndUnfollowChangeLiveStateImmediately) {
  World w;
  w.BuildSmall();
  Ref u1 = *w.registry.Find("u1"), i9 = *w.registry.Find("i9"), c2 = *w.registry.Find("c2");
  ASSERT_TRUE(w.Events({World::Ev("u1", "i9", "hide"), World::Ev("u1", "c2", "follow")}).ok());
  EXPECT_TRUE(w.live->Viewer(u1)->Hid(i9));
  EXPECT_TRUE(w.live->Viewer(u1)->Follows(c2));
  EXPECT_EQ(w.live->Followers(c2), 1u);
  ASSERT_TRUE(w.Events({World::Ev("u1", "c2", "unfollow")}).ok());
  EXPECT_FALSE(w.live->Viewer(u1)->Follows(c2));
  EXPECT_EQ(w.live->Followers(c2), 0u);
}

TEST(IngestorTest, EntityBatchMayCreateTheCreatorItsItemsName) {
  World w;
  auto n = w.ingestor->UpsertEntities({{"i1", "item", "c9", "", ""}, {"c9", "creator", "", "", ""}});
  ASSERT_TRUE(n.ok()) << n.status();
  Ref item = *w.registry.Find("i1");
  EXPECT_EQ(w.registry.CreatorOf(item), *w.registry.Find("c9"));
  EXPECT_EQ(w.registry.ItemsOf(w.registry.Find("c9")->id())->size(), 1u);
}

TEST(IngestorTest, EntityBatchRejectsUnknownCreatorKindChangesAndDuplicates) {
  World w;
  w.BuildSmall();
  EXPECT_FALSE(w.ingestor->UpsertEntities({{"i99", "item", "nobody", "", ""}}).ok());
  EXPECT_FALSE(w.ingestor->UpsertEntities({{"u1", "item", "", "", ""}}).ok());
  EXPECT_FALSE(w.ingestor->UpsertEntities({{"x", "user", "", "", ""}, {"x", "user", "", "", ""}}).ok());
  EXPECT_FALSE(w.ingestor->UpsertEntities({{"x", "users", "", "", ""}}).ok());
  EXPECT_FALSE(w.registry.Find("x"));
}

TEST(IngestorTest, UpsertUpdatesAnExistingEntityInPlace) {
  World w;
  w.BuildSmall();
  Ref before = *w.registry.Find("i1");
  ASSERT_TRUE(w.ingestor->UpsertEntities({{"i1", "item", "c2", "fresh", ""}}).ok());
  EXPECT_EQ(*w.registry.Find("i1"), before);
  EXPECT_EQ(w.registry.Get(before)->cohort, "fresh");
  EXPECT_EQ(w.registry.CreatorOf(before), *w.registry.Find("c2"));
}

TEST(LiveStateTest, ReplayFromTheStoreRebuildsTheSameState) {
  World w;
  w.BuildSmall();
  ASSERT_TRUE(w.Events({World::Ev("u4", "i2", "hide"), World::Ev("u4", "u5", "unfollow")}).ok());
  LiveState replayed(w.config.actions);
  ASSERT_TRUE(replayed.Load(*w.store).ok());
  for (int u = 0; u < 10; ++u) {
    Ref r = *w.registry.Find("u" + std::to_string(u));
    auto a = w.live->Viewer(r), b = replayed.Viewer(r);
    EXPECT_EQ(a->follows, b->follows) << u;
    EXPECT_EQ(a->hidden, b->hidden) << u;
    EXPECT_EQ(a->recent.size(), b->recent.size()) << u;
    EXPECT_EQ(w.live->Followers(r), replayed.Followers(r)) << u;
  }
  EXPECT_EQ(w.live->events_applied(), replayed.events_applied());
}

TEST(LiveStateTest, EngagementDecaysWithTheConfiguredHalfLife) {
  ActionWeights weights;
  LiveState live(weights, 1000);
  Event e;
  e.viewer = Ref(Kind::kUser, 0);
  e.entity = Ref(Kind::kItem, 3);
  e.action = Action::kClick;
  e.weight = 4;
  e.ts = 10'000;
  live.Apply({e});
  EXPECT_NEAR(live.Engagement(e.entity, 10'000), 4.0, 1e-4);
  EXPECT_NEAR(live.Engagement(e.entity, 11'000), 2.0, 1e-4);
}

TEST(LiveStateTest, RecentListsNewestDistinctEntitiesFirst) {
  World w;
  w.BuildSmall();
  ASSERT_TRUE(w.Events({World::Ev("u1", "i7", "click"), World::Ev("u2", "i8", "click"), World::Ev("u3", "i7", "click")}).ok());
  auto recent = w.live->Recent(Kind::kItem, 2);
  ASSERT_EQ(recent.size(), 2u);
  EXPECT_EQ(recent[0], *w.registry.Find("i7"));
  EXPECT_EQ(recent[1], *w.registry.Find("i8"));
}

}  // namespace
}  // namespace affinity

namespace affinity {
namespace {

TEST(LiveStateTest, KeepsTheOffsetsOfEachViewersNewestEventsOfEveryAction) {
  testing::World w;
  w.BuildSmall();
  ASSERT_TRUE(w.Events({testing::World::Ev("u1", "i3", "hide"), testing::World::Ev("u1", "u5", "follow")}).ok());
  auto state = w.live->Viewer(*w.registry.Find("u1"));
  ASSERT_GE(state->feedback.size(), 2u);
  const uint64_t next = w.store->NextOffset();
  EXPECT_EQ(state->feedback.back(), next - 1);
  EXPECT_EQ(state->feedback[state->feedback.size() - 2], next - 2);
  std::vector<RawEvent> many;
  for (int i = 0; i < 150; ++i) many.push_back(testing::World::Ev("u1", absl::StrCat("i", i % 30), "click"));
  ASSERT_TRUE(w.Events(many).ok());
  state = w.live->Viewer(*w.registry.Find("u1"));
  EXPECT_EQ(state->feedback.size(), ViewerState::kMaxFeedback);
  EXPECT_EQ(state->feedback.back(), w.store->NextOffset() - 1);
  // A replay rebuilds the same offsets.
  LiveState replayed(w.config.actions);
  ASSERT_TRUE(replayed.Load(*w.store).ok());
  EXPECT_EQ(replayed.Viewer(*w.registry.Find("u1"))->feedback, state->feedback);
}

TEST(RegistryTest, DeletedAndExpiredEntitiesAreNotRecommendableAndAnUpsertRestores) {
  testing::World w;
  w.BuildSmall();
  const Ref i3 = *w.registry.Find("i3");
  EXPECT_TRUE(w.registry.Recommendable(i3, w.clock.NowMillis()));
  ASSERT_TRUE(w.ingestor->DeleteEntity("i3").ok());
  EXPECT_FALSE(w.registry.Recommendable(i3, w.clock.NowMillis()));
  EXPECT_EQ(w.ingestor->DeleteEntity("nope").code(), absl::StatusCode::kNotFound);
  RawEntity item{"i3", "item", "c0", "", "", {"jazz"}, w.clock.NowMillis() + 1000};
  ASSERT_TRUE(w.ingestor->UpsertEntities({item}).ok());
  EXPECT_TRUE(w.registry.Recommendable(i3, w.clock.NowMillis()));
  EXPECT_FALSE(w.registry.Recommendable(i3, w.clock.NowMillis() + 1000)) << "expired";
  item.labels = {"rock"};
  item.expires_at.reset();
  ASSERT_TRUE(w.ingestor->UpsertEntities({item}).ok());
  EXPECT_TRUE(w.registry.WithLabel("jazz", Kind::kItem, 10).empty()) << "no longer carries it";
  EXPECT_EQ(w.registry.WithLabel("rock", Kind::kItem, 10), std::vector<Ref>{i3});
  EXPECT_TRUE(w.registry.WithLabel("rock", Kind::kUser, 10).empty());
  item.expires_at = 5;
  EXPECT_FALSE(w.ingestor->UpsertEntities({item}).ok()) << "expires_at in seconds or earlier than 1990";
}

TEST(DecayedCountersTest, EachHalfLifeHalvesItsCountOverThatSpan) {
  DecayedCounters c;
  const Ref r(Kind::kItem, 3);
  const int64_t t0 = 1'700'000'000'000;
  c.Add(r, 1.0, t0);
  auto now = c.Get(r, t0);
  for (double v : now) EXPECT_NEAR(v, 1.0, 1e-6);
  auto hour = c.Get(r, t0 + 3600'000);
  EXPECT_NEAR(hour[0], 0.5, 1e-6);                    // 1 h half-life
  EXPECT_NEAR(hour[1], std::exp2(-1.0 / 24), 1e-6);   // 1 day
  EXPECT_NEAR(hour[2], std::exp2(-1.0 / 168), 1e-6);  // 7 days
  c.Add(r, 2.0, t0 + 3600'000);                        // decayed, then added
  EXPECT_NEAR(c.Get(r, t0 + 3600'000)[0], 2.5, 1e-6);
  c.Add(r, 1.0, t0);                                   // late: decayed to the counter's time
  EXPECT_NEAR(c.Get(r, t0 + 3600'000)[0], 3.0, 1e-6);
  EXPECT_EQ(c.LastMs(r), t0 + 3600'000);
  EXPECT_EQ(c.Get(Ref(Kind::kItem, 4), t0)[0], 0.0);  // never engaged
}

TEST(LiveStateTest, CreatorCountsSumTheCreatorsItemsAndItself) {
  LiveState live(ActionWeights{});
  live.SetCreatorOf([](Ref r) { return r.kind() == Kind::kItem ? Ref(Kind::kCreator, r.id() % 2) : Ref(); });
  auto ev = [](Ref entity, int64_t ts) {
    Event e;
    e.viewer = Ref(Kind::kUser, 0);
    e.entity = entity;
    e.action = Action::kClick;
    e.weight = 1;
    e.ts = ts;
    return e;
  };
  const int64_t t = 1'700'000'000'000;
  live.Apply({ev(Ref(Kind::kItem, 2), t), ev(Ref(Kind::kItem, 4), t), ev(Ref(Kind::kItem, 3), t),
              ev(Ref(Kind::kCreator, 0), t)});
  EXPECT_NEAR(live.CreatorCounts(Ref(Kind::kCreator, 0), t)[0], 3.0, 1e-6);  // items 2 and 4, and itself
  EXPECT_NEAR(live.CreatorCounts(Ref(Kind::kCreator, 1), t)[0], 1.0, 1e-6);
  EXPECT_NEAR(live.ViewerCounts(Ref(Kind::kUser, 0), t)[2], 4.0, 1e-6);
  EXPECT_NEAR(live.EntityCounts(Ref(Kind::kItem, 2), t)[1], 1.0, 1e-6);
}

}  // namespace
}  // namespace affinity
