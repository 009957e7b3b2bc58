#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"

#include "base/strings.h"
#include "state/checkpointer.h"
#include "store/record_codecs.h"
#include "testing/raw_records.h"
#include "testing/section_files.h"
#include "testing/world.h"
#include "state/checkpoint_options.h"

namespace affinity {
namespace {

using testing::UnalignedSections;
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

TEST(IngestorTest, AnAcceptedEventCarriesItsContextsRequestIdAndTheLogGivesItBack) {
  World w;
  w.BuildSmall();
  std::vector<Event> observed;
  w.ingestor->SetFeedbackObserver([&](const std::vector<Event>& events) { observed = events; });
  RawEvent named = World::Ev("u1", "i2", "click");
  named.context = R"({"request_id":"q_42"})";
  const uint64_t from = w.store->NextOffset();
  ASSERT_TRUE(w.Events({named, World::Ev("u1", "i3", "click")}).ok());
  ASSERT_EQ(observed.size(), 2u);
  EXPECT_EQ(observed[0].request_id, "q_42");
  EXPECT_EQ(observed[1].request_id, "");
  std::vector<std::string> read;
  ASSERT_TRUE(w.store->ScanEventsFrom(from, [&](const Event& e) { read.push_back(e.request_id); return true; }).ok());
  EXPECT_EQ(read, (std::vector<std::string>{"q_42", ""}));
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

TEST(IngestorTest, IdsMeetTheOneIdRuleOfEveryRouteImportsIncluded) {
  World w;
  w.BuildSmall();
  auto bad_entity = w.ingestor->UpsertEntities({{"bad\x01id", "user", "", "", ""}});
  ASSERT_FALSE(bad_entity.ok());
  EXPECT_NE(bad_entity.status().message().find("id must be 1 to 256 bytes of printable UTF-8"), std::string::npos)
      << bad_entity.status();
  EXPECT_FALSE(w.ingestor->UpsertEntities({{"   ", "user", "", "", ""}}).ok()) << "a blank id";
  EXPECT_FALSE(w.ingestor->UpsertEntities({{std::string("nul\0id", 6), "user", "", "", ""}}).ok());
  auto blank_viewer = w.Events({World::Ev("  ", "i1", "click")});
  EXPECT_NE(blank_viewer.message().find("viewer_id must be 1 to 256 bytes"), std::string::npos) << blank_viewer;
  auto long_entity = w.Events({World::Ev("u1", std::string(257, 'i'), "click")});
  EXPECT_NE(long_entity.message().find("entity_id must be 1 to 256 bytes"), std::string::npos) << long_entity;
  auto kind = w.ingestor->UpsertEntities({{"i1", "user", "", "", ""}});
  ASSERT_FALSE(kind.ok());
  EXPECT_NE(kind.status().message().find("id 'i1' is already an item"), std::string::npos) << kind.status();
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

// The live state's checkpoint: a state restored from it plus the log's tail is
// the state a whole-log replay builds; a checkpoint that does not fit is
// refused (and the whole log replayed) rather than trusted.
namespace affinity {
namespace {

using testing::RewriteSections;
using testing::UnalignedSections;
using testing::World;

// The live state's checkpoint as this build writes it (state/live_state.cc).
constexpr SectionFormat kCheckpointFileFormat{std::string_view("AFFLIVE2", 8), true, 64};

std::function<Ref(Ref)> CreatorsOf(const EntityRegistry& registry) {
  return [&registry](Ref r) { return r.kind() == Kind::kItem ? registry.CreatorOf(r) : Ref(); };
}

std::array<uint32_t, kNumKinds> Known(const EntityRegistry& r) {
  return {r.Count(Kind::kUser), r.Count(Kind::kCreator), r.Count(Kind::kItem)};
}

// A live state over w's registry (its creators known), not loaded yet.
std::unique_ptr<LiveState> UnloadedState(const World& w, int64_t half_life_ms = 24 * 3600 * 1000LL) {
  auto s = std::make_unique<LiveState>(w.config.actions, half_life_ms);
  s->SetCreatorOf(CreatorsOf(w.registry));
  return s;
}

// Everything a reader of the live state can see, for every entity of the world.
// interleaved: the two states applied concurrent writers' batches in different
// orders. Then the rings of recently engaged entities (which follow the order
// batches were applied in, not the log's) are compared as sets, and a creator
// whose items both writers engaged sums the same decayed terms in another
// order: the counters are stored as floats, so those sums agree within float
// rounding rather than bit for bit.
void ExpectSameState(const LiveState& a, const LiveState& b, const EntityRegistry& registry, int64_t now,
                     bool interleaved = false) {
  for (int k = 0; k < kNumKinds; ++k) {
    for (uint32_t id = 0; id < registry.Count(Kind(k)); ++id) {
      const Ref r(Kind(k), id);
      SCOPED_TRACE(std::string(KindName(Kind(k))) + " " + std::to_string(id));
      EXPECT_EQ(a.Followers(r), b.Followers(r));
      EXPECT_FLOAT_EQ(float(a.Engagement(r, now)), float(b.Engagement(r, now)));
      EXPECT_EQ(a.FirstEngagedMs(r), b.FirstEngagedMs(r));
      EXPECT_EQ(a.LastEngagedMs(r), b.LastEngagedMs(r));
      EXPECT_EQ(a.CreatorLastEngagedMs(r), b.CreatorLastEngagedMs(r));
      for (int h = 0; h < DecayedCounters::kHalfLives; ++h) {
        EXPECT_FLOAT_EQ(float(a.EntityCounts(r, now)[h]), float(b.EntityCounts(r, now)[h]));
        EXPECT_FLOAT_EQ(float(a.ViewerCounts(r, now)[h]), float(b.ViewerCounts(r, now)[h]));
        const double x = a.CreatorCounts(r, now)[h], y = b.CreatorCounts(r, now)[h];
        if (interleaved)
          EXPECT_NEAR(x, y, 1e-5 * std::max(1.0, std::abs(x)));
        else
          EXPECT_FLOAT_EQ(float(x), float(y));
      }
      if (k != int(Kind::kUser)) continue;
      auto x = a.Viewer(r), y = b.Viewer(r);
      EXPECT_EQ(x->follows, y->follows);
      EXPECT_EQ(x->hidden, y->hidden);
      EXPECT_EQ(x->engaged, y->engaged);
      EXPECT_EQ(x->feedback, y->feedback);
      EXPECT_EQ(x->events, y->events);
      EXPECT_EQ(x->last_ts, y->last_ts);
      ASSERT_EQ(x->recent.size(), y->recent.size());
      for (size_t i = 0; i < x->recent.size(); ++i) {
        EXPECT_EQ(x->recent[i].entity, y->recent[i].entity);
        EXPECT_EQ(x->recent[i].action, y->recent[i].action);
        EXPECT_EQ(x->recent[i].weight, y->recent[i].weight);
        EXPECT_EQ(x->recent[i].ts, y->recent[i].ts);
      }
      ASSERT_EQ(x->creators.size(), y->creators.size());
      for (size_t i = 0; i < x->creators.size(); ++i) {
        EXPECT_EQ(x->creators[i].creator, y->creators[i].creator);
        EXPECT_EQ(x->creators[i].count, y->creators[i].count);
        EXPECT_EQ(x->creators[i].last_ts, y->creators[i].last_ts);
      }
    }
  }
  for (int k = 0; k < kNumKinds; ++k) {
    auto x = a.Recent(Kind(k), 50), y = b.Recent(Kind(k), 50);
    if (interleaved) std::sort(x.begin(), x.end()), std::sort(y.begin(), y.end());
    EXPECT_EQ(x, y);
  }
  EXPECT_EQ(a.events_applied(), b.events_applied());
  EXPECT_EQ(a.last_event_ts(), b.last_event_ts());
  EXPECT_EQ(a.applied_offset(), b.applied_offset());
}

// The replay runs on two threads in blocks of thousands of events; this log is
// several blocks long, with every action, both viewer parities and events out
// of time order, so that any change applied out of its log order would show.
TEST(CheckpointTest, AReplayOfManyBlocksBuildsExactlyWhatLiveApplicationDid) {
  World w;
  w.live->SetCreatorOf(CreatorsOf(w.registry));
  w.BuildSmall();
  const char* const actions[] = {"click", "like", "play", "share", "comment", "follow", "unfollow", "hide", "impression"};
  std::mt19937 rng(7);
  const std::string path = w.dir.path() + "/live.ckpt";
  uint64_t checkpointed = 0;
  for (int batch = 0; batch < 150; ++batch) {
    std::vector<RawEvent> events;
    for (int j = 0; j < 100; ++j) {
      const uint32_t viewer = rng() % 10;
      const std::string action = actions[rng() % 9];
      const bool follow = action == "follow" || action == "unfollow";  // of users and creators only
      const uint32_t pick = follow ? 30 + rng() % 13 : rng() % 43;
      const std::string entity = pick < 30   ? absl::StrCat("i", pick)
                                 : pick < 33 ? absl::StrCat("c", pick - 30)
                                             : absl::StrCat("u", (viewer + 1 + pick % 9) % 10);  // not the viewer
      events.push_back(World::Ev(absl::StrCat("u", viewer), entity, action,
                                 1'767'200'000'000 + batch * 60'000 + int64_t(rng() % 3'600'000) - 1'800'000));
    }
    auto st = w.Events(events);
    ASSERT_TRUE(st.ok()) << st;
    if (batch == 40) {  // a checkpoint with a tail of several blocks after it
      auto written = w.live->WriteCheckpoint(path, w.clock.NowMillis());
      ASSERT_TRUE(written.ok()) << written.status();
      checkpointed = written->events;
    }
  }
  auto whole = UnloadedState(w);
  auto r = whole->Load(*w.store);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(r->replayed, 15'000u);
  ExpectSameState(*whole, *w.live, w.registry, w.clock.NowMillis());
  auto restored = UnloadedState(w);
  r = restored->Load(*w.store, path, Known(w.registry));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->from_checkpoint) << r->checkpoint_refused;
  EXPECT_EQ(r->replayed, w.live->events_applied() - checkpointed);
  ExpectSameState(*restored, *w.live, w.registry, w.clock.NowMillis());
}

// A record of the log that cannot be decoded, several blocks into a replay:
// the load stops with the store's error (both of the replay's threads done),
// rather than serving a state built from part of the log.
TEST(CheckpointTest, AReplayThatMeetsADamagedEventRecordFailsWithTheStoresError) {
  World w;
  w.live->SetCreatorOf(CreatorsOf(w.registry));
  w.BuildSmall();
  for (int batch = 0; batch < 100; ++batch) {
    std::vector<RawEvent> events;
    for (int j = 0; j < 100; ++j)
      events.push_back(World::Ev(absl::StrCat("u", j % 10), absl::StrCat("i", (batch + j) % 30), "click",
                                 1'767'200'000'000 + batch * 1000 + j));
    ASSERT_TRUE(w.Events(events).ok());
  }
  const uint64_t end = w.store->NextOffset();
  w.ingestor.reset();
  w.store.reset();
  ASSERT_TRUE(testing::PutRawRecords(w.dir.path() + "/db", "events", {{store_internal::BigEndian64(end - 50), "not an event"}}));
  auto store = OpenRocksStore(w.dir.path(), OpenMode::kPrimary, {.clock = &w.clock});
  ASSERT_TRUE(store.ok()) << store.status();
  auto state = UnloadedState(w);
  auto r = state->Load(**store);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(std::string(r.status().message()).find("undecodable"), std::string::npos) << r.status();
}

TEST(CheckpointTest, ACheckpointPlusTheLogsTailRebuildsWhatTheWholeLogWould) {
  World w;
  w.live->SetCreatorOf(CreatorsOf(w.registry));
  w.BuildSmall();
  const std::string path = w.dir.path() + "/state/live.ckpt";
  auto written = w.live->WriteCheckpoint(path, w.clock.NowMillis());
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(written->offset, w.store->NextOffset());
  EXPECT_EQ(written->events, w.live->events_applied());
  EXPECT_GT(written->bytes, 0u);
  // The tail: follows undone, hides, new engagement (some out of time order).
  ASSERT_TRUE(w.Events({World::Ev("u1", "u2", "unfollow"), World::Ev("u1", "i4", "hide"),
                        World::Ev("u3", "i20", "play", 1'767'225'300'000), World::Ev("u3", "c1", "follow"),
                        World::Ev("u4", "i5", "click", 1'767'100'000'000)})
                  .ok());
  LiveState restored(w.config.actions), replayed(w.config.actions);
  restored.SetCreatorOf(CreatorsOf(w.registry));
  replayed.SetCreatorOf(CreatorsOf(w.registry));
  auto from_checkpoint = restored.Load(*w.store, path, Known(w.registry));
  ASSERT_TRUE(from_checkpoint.ok()) << from_checkpoint.status();
  EXPECT_TRUE(from_checkpoint->from_checkpoint) << from_checkpoint->checkpoint_refused;
  EXPECT_EQ(from_checkpoint->replayed, 5u) << "only the tail is read from the log";
  EXPECT_EQ(from_checkpoint->checkpoint.offset, written->offset);
  auto whole = replayed.Load(*w.store);
  ASSERT_TRUE(whole.ok());
  EXPECT_FALSE(whole->from_checkpoint);
  EXPECT_EQ(whole->replayed, w.live->events_applied());
  ExpectSameState(restored, replayed, w.registry, w.clock.NowMillis());
  ExpectSameState(restored, *w.live, w.registry, w.clock.NowMillis());
  // Viewer-creator and viewer-entity recency are part of it.
  auto u3 = restored.Viewer(*w.registry.Find("u3"));
  ASSERT_NE(u3->Creator(*w.registry.Find("c2")), nullptr);  // i20's creator
  EXPECT_EQ(u3->Creator(*w.registry.Find("c2"))->last_ts, 1'767'225'300'000);
  EXPECT_EQ(u3->LastEngagedMs(*w.registry.Find("i20")), 1'767'225'300'000);
}

// The stream groups' times are kept to the millisecond (their freshness_ts),
// through a checkpoint too; a checkpoint written by a build that kept seconds
// (no first_seen_ms or last_ms sections, first_seen in seconds) still loads,
// with those times to the second.
TEST(CheckpointTest, EngagementTimesKeepTheirMillisecondsAndOlderCheckpointsTheirSeconds) {
  World w;
  w.live->SetCreatorOf(CreatorsOf(w.registry));
  w.BuildSmall();
  const int64_t at = 1'767'225'300'123;
  ASSERT_TRUE(w.Events({World::Ev("u3", "i20", "play", at), World::Ev("u4", "i20", "click", at - 2'000'456)}).ok());
  const Ref item = *w.registry.Find("i20"), creator = *w.registry.Find("c2");
  ASSERT_EQ(w.registry.CreatorOf(item), creator);
  EXPECT_EQ(w.live->LastEngagedMs(item), at);
  EXPECT_EQ(w.live->CreatorLastEngagedMs(creator), at);
  const int64_t first = w.live->FirstEngagedMs(item);
  EXPECT_NE(first % 1000, 0) << "the small world's events carry milliseconds too";
  const std::string path = w.dir.path() + "/state/live.ckpt";
  ASSERT_TRUE(w.live->WriteCheckpoint(path, w.clock.NowMillis()).ok());
  auto restored = UnloadedState(w);
  auto report = restored->Load(*w.store, path, Known(w.registry));
  ASSERT_TRUE(report.ok() && report->from_checkpoint) << (report.ok() ? report->checkpoint_refused : "");
  ExpectSameState(*restored, *w.live, w.registry, w.clock.NowMillis());
  // As the build before wrote it: first_seen in seconds, no last_ms.
  {
    SectionReader r;
    ASSERT_TRUE(r.Open(path, {kCheckpointFileFormat}).ok());
    SectionWriter out(kCheckpointFileFormat);
    int renamed = 0, dropped = 0;
    for (const std::string& name : r.names()) {
      if (name.find(".last_ms.") != std::string::npos) {
        ++dropped;
        continue;
      }
      if (name.rfind("first_seen_ms.", 0) == 0) {
        std::vector<int64_t> ms;
        r.Get(name, &ms);
        std::vector<uint32_t> secs;
        for (int64_t v : ms) secs.push_back(uint32_t(v / 1000));
        out.Add("first_seen." + name.substr(std::strlen("first_seen_ms.")), secs);
        ++renamed;
        continue;
      }
      std::vector<char> bytes;
      r.Get(name, &bytes);
      out.Add(name, bytes);
    }
    EXPECT_EQ(renamed, kNumKinds);
    EXPECT_EQ(dropped, 3 * kNumKinds);
    ASSERT_TRUE(WriteFileAtomic(path, out.data()));
  }
  auto older = UnloadedState(w);
  report = older->Load(*w.store, path, Known(w.registry));
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_TRUE(report->from_checkpoint) << report->checkpoint_refused;
  EXPECT_EQ(older->LastEngagedMs(item), at / 1000 * 1000);
  EXPECT_EQ(older->FirstEngagedMs(item), first / 1000 * 1000);
  EXPECT_EQ(older->CreatorLastEngagedMs(creator), at / 1000 * 1000);
}

TEST(CheckpointTest, BatchesAppliedOutOfOrderAreInTheCheckpointOnceAndNotReplayedAgain) {
  World w;
  w.live->SetCreatorOf(CreatorsOf(w.registry));
  w.BuildSmall();
  // Two batches appended in order, the later one applied first (two ingest
  // requests racing between the append and the apply).
  auto ev = [&](const char* viewer, const char* entity, Action a) {
    Event e;
    e.viewer = *w.registry.Find(viewer);
    e.entity = *w.registry.Find(entity);
    e.action = a;
    e.weight = a == Action::kHide ? -1.f : 1.f;
    e.ts = 1'767'225'100'000;
    return e;
  };
  std::vector<Event> first = {ev("u1", "i1", Action::kClick), ev("u2", "c1", Action::kFollow)};
  std::vector<Event> second = {ev("u1", "i2", Action::kLike), ev("u2", "i3", Action::kHide)};
  ASSERT_TRUE(w.store->AppendEvents(first, {{first[1].viewer, first[1].entity, true, first[1].ts}}).ok());
  ASSERT_TRUE(w.store->AppendEvents(second, {}).ok());
  w.live->Apply(second);
  const std::string path = w.dir.path() + "/live.ckpt";
  auto written = w.live->WriteCheckpoint(path, w.clock.NowMillis());
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(written->offset, first[0].offset) << "the first batch is not in it";
  ASSERT_EQ(written->ahead.size(), 1u);
  EXPECT_EQ(written->ahead[0], std::make_pair(second[0].offset, second[1].offset + 1));
  w.live->Apply(first);
  EXPECT_EQ(w.live->applied_offset(), w.store->NextOffset()) << "the gap closed";

  auto restored = UnloadedState(w);
  auto report = restored->Load(*w.store, path, Known(w.registry));
  ASSERT_TRUE(report.ok());
  ASSERT_TRUE(report->from_checkpoint) << report->checkpoint_refused;
  EXPECT_EQ(report->replayed, 2u) << "the first batch only";
  // Exactly the state the server held, in the order it applied the batches
  // (a whole-log replay applies them in log order instead).
  ExpectSameState(*restored, *w.live, w.registry, w.clock.NowMillis());
}

TEST(CheckpointTest, ADamagedOrForeignCheckpointIsRefusedAndTheWholeLogReplayed) {
  World w;
  w.live->SetCreatorOf(CreatorsOf(w.registry));
  w.BuildSmall();
  const std::string path = w.dir.path() + "/live.ckpt";
  ASSERT_TRUE(w.live->WriteCheckpoint(path, w.clock.NowMillis()).ok());
  auto load = [&](const std::string& p, std::array<uint32_t, kNumKinds> known, int64_t half_life = 24 * 3600 * 1000LL) {
    auto s = UnloadedState(w, half_life);
    auto r = s->Load(*w.store, p, known);
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(s->events_applied(), w.live->events_applied()) << "the whole log replayed instead";
    return r.ok() ? *r : LiveLoadReport{};
  };
  // Undamaged: used.
  EXPECT_TRUE(load(path, Known(w.registry)).from_checkpoint);
  // Written before sections were aligned: still installed.
  ASSERT_TRUE(WriteFileAtomic(path + ".v1", UnalignedSections(*ReadFile(path), "AFFLIVE1", true)));
  EXPECT_TRUE(load(path + ".v1", Known(w.registry)).from_checkpoint);
  // One byte flipped in the middle: its section's checksum fails.
  std::string bytes = *ReadFile(path);
  std::string damaged = bytes;
  damaged[damaged.size() / 2] ^= 0x5A;
  ASSERT_TRUE(WriteFileAtomic(path + ".bad", damaged));
  auto r = load(path + ".bad", Known(w.registry));
  EXPECT_FALSE(r.from_checkpoint);
  EXPECT_NE(r.checkpoint_refused.find("checksum"), std::string::npos) << r.checkpoint_refused;
  // Cut short.
  ASSERT_TRUE(WriteFileAtomic(path + ".short", bytes.substr(0, bytes.size() - 100)));
  r = load(path + ".short", Known(w.registry));
  EXPECT_FALSE(r.from_checkpoint);
  EXPECT_NE(r.checkpoint_refused.find("truncated"), std::string::npos) << r.checkpoint_refused;
  // Another file altogether.
  ASSERT_TRUE(WriteFileAtomic(path + ".other", "AFFSNAP2 not a checkpoint"));
  EXPECT_FALSE(load(path + ".other", Known(w.registry)).from_checkpoint);
  // Written under another decay: its counters would be wrong here.
  r = load(path, Known(w.registry), 3600 * 1000LL);
  EXPECT_FALSE(r.from_checkpoint);
  EXPECT_NE(r.checkpoint_refused.find("half-life"), std::string::npos) << r.checkpoint_refused;
  // From a data dir with more entities than this registry holds.
  auto fewer = Known(w.registry);
  fewer[int(Kind::kItem)] = 3;
  r = load(path, fewer);
  EXPECT_FALSE(r.from_checkpoint);
  EXPECT_NE(r.checkpoint_refused.find("registry"), std::string::npos) << r.checkpoint_refused;
  EXPECT_NE(r.checkpoint_refused.find("item"), std::string::npos) << "names the kind: " << r.checkpoint_refused;
}

// The rings of recently engaged entities are checked as the viewers' lists
// are: an entry the registry does not hold, or of another kind, refuses the
// checkpoint (and the whole log is replayed) instead of surfacing later.
TEST(CheckpointTest, ACheckpointWhoseRingNamesAnUnknownEntityIsRefused) {
  World w;
  w.live->SetCreatorOf(CreatorsOf(w.registry));
  w.BuildSmall();
  const std::string path = w.dir.path() + "/live.ckpt";
  ASSERT_TRUE(w.live->WriteCheckpoint(path, w.clock.NowMillis()).ok());
  const std::string good = *ReadFile(path);
  auto with_first_item_in_ring = [&](Ref r) {
    EXPECT_TRUE(WriteFileAtomic(path, good));
    EXPECT_EQ(RewriteSections(path, kCheckpointFileFormat,
                              [&](const std::string& name, std::vector<char>& bytes) {
                                if (name == "ring.item") std::memcpy(bytes.data(), &r.bits, 4);
                                return true;
                              }),
              0);
    auto s = UnloadedState(w);
    auto report = s->Load(*w.store, path, Known(w.registry));
    EXPECT_TRUE(report.ok());
    EXPECT_EQ(s->events_applied(), w.live->events_applied()) << "the whole log replayed instead";
    return report.ok() ? *report : LiveLoadReport{};
  };
  EXPECT_TRUE(with_first_item_in_ring(*w.registry.Find("i3")).from_checkpoint);  // an item it holds: used
  auto r = with_first_item_in_ring(Ref(Kind::kItem, 999));
  EXPECT_FALSE(r.from_checkpoint);
  EXPECT_NE(r.checkpoint_refused.find("item 999"), std::string::npos) << r.checkpoint_refused;
  r = with_first_item_in_ring(*w.registry.Find("u1"));
  EXPECT_FALSE(r.from_checkpoint);
  EXPECT_NE(r.checkpoint_refused.find("ring of recent items"), std::string::npos) << r.checkpoint_refused;
}

TEST(CheckpointTest, ACheckpointReadBeforeTheRegistryIsKnownInstallsOnceItIs) {
  World w;
  w.live->SetCreatorOf(CreatorsOf(w.registry));
  w.BuildSmall();
  const std::string path = w.dir.path() + "/live.ckpt";
  ASSERT_TRUE(w.live->WriteCheckpoint(path, w.clock.NowMillis()).ok());
  // Read with no registry at hand (as a server does while its registry loads),
  // installed with it.
  auto restored = UnloadedState(w);
  auto image = restored->ReadCheckpoint(path);
  ASSERT_TRUE(image.ok()) << image.status();
  auto report = restored->Load(*w.store, std::move(image), Known(w.registry));
  ASSERT_TRUE(report.ok());
  ASSERT_TRUE(report->from_checkpoint) << report->checkpoint_refused;
  EXPECT_EQ(report->replayed, 0u);
  ExpectSameState(*restored, *w.live, w.registry, w.clock.NowMillis());
  // A file that cannot be read is reported as refused, and the log replayed.
  auto replayed = UnloadedState(w);
  auto unreadable = replayed->ReadCheckpoint(path + ".missing");
  EXPECT_FALSE(unreadable.ok());
  auto r = replayed->Load(*w.store, std::move(unreadable), Known(w.registry));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->from_checkpoint);
  EXPECT_FALSE(r->checkpoint_refused.empty());
  ExpectSameState(*replayed, *w.live, w.registry, w.clock.NowMillis());
}

TEST(CheckpointTest, ACheckpointAheadOfTheLogIsRefused) {
  World big, small;
  big.BuildSmall();
  small.BuildSmall();
  ASSERT_TRUE(big.Events({World::Ev("u1", "i9", "click"), World::Ev("u2", "i9", "click")}).ok());
  const std::string path = big.dir.path() + "/live.ckpt";
  ASSERT_TRUE(big.live->WriteCheckpoint(path, big.clock.NowMillis()).ok());
  LiveState s(small.config.actions);
  auto r = s.Load(*small.store, path, Known(small.registry));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->from_checkpoint);
  EXPECT_NE(r->checkpoint_refused.find("past the log's end"), std::string::npos) << r->checkpoint_refused;
  EXPECT_EQ(s.events_applied(), small.live->events_applied());
}

TEST(CheckpointerTest, WritesOnceEnoughEventsArriveAndALastOneAtAStop) {
  World w;
  w.BuildSmall();
  StateOptions options;
  options.checkpoint_interval_seconds = 3600;
  options.checkpoint_after_events = 3;
  const std::string path = w.dir.path() + "/state/live.ckpt";
  LiveLoadReport loaded;
  Checkpointer c(w.live.get(), path, options, &w.clock, loaded);
  c.Start();
  // The world's own events (more than 3 past none) make one due at once.
  for (int i = 0; i < 100 && c.status().written == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_EQ(c.status().written, 1u) << c.status().last_error;
  EXPECT_EQ(c.status().last->events, w.live->events_applied());
  // Two more events: not enough for another.
  ASSERT_TRUE(w.Events({World::Ev("u1", "i9", "click"), World::Ev("u2", "i9", "click")}).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  EXPECT_EQ(c.status().written, 1u);
  EXPECT_EQ(c.status().events_since, 2u);
  // A clean stop writes the last one, which covers them.
  c.Stop();
  EXPECT_EQ(c.status().written, 2u);
  EXPECT_EQ(c.status().last->offset, w.store->NextOffset());
  EXPECT_EQ(c.status().events_since, 0u);
  // A checkpoint that cannot be written is counted and says why; the state is untouched.
  ASSERT_TRUE(WriteFileAtomic(w.dir.path() + "/not-a-dir", "x"));
  Checkpointer blocked(w.live.get(), w.dir.path() + "/not-a-dir/live.ckpt", options, &w.clock, loaded);
  auto failed = blocked.WriteNow();
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find("Not a directory"), std::string::npos) << failed.status();
  EXPECT_EQ(blocked.status().failures, 1u);
  EXPECT_NE(blocked.status().last_error.find("cannot write"), std::string::npos);
  EXPECT_FALSE(blocked.status().last.has_value());
  EXPECT_EQ(blocked.status().events_since, w.live->events_applied());
  // Turned off: nothing written, even at a stop.
  options.checkpoint_interval_seconds = 0;
  Checkpointer off(w.live.get(), w.dir.path() + "/off.ckpt", options, &w.clock, loaded);
  off.Start();
  off.Stop();
  EXPECT_FALSE(std::filesystem::exists(w.dir.path() + "/off.ckpt"));
}

TEST(CheckpointTest, CheckpointsWrittenWhileEventsArriveRestoreToTheLiveState) {
  World w;
  w.live->SetCreatorOf(CreatorsOf(w.registry));
  w.BuildSmall();
  // Two writers on disjoint viewers and items (so that each viewer's and item's
  // history has one order; creators may have items of both), checkpoints
  // written meanwhile.
  auto writer = [&](int first_user, int first_item) {
    for (int round = 0; round < 40; ++round) {
      std::vector<RawEvent> batch;
      for (int u = 0; u < 5; ++u)
        batch.push_back(World::Ev(absl::StrCat("u", first_user + u), absl::StrCat("i", first_item + (round + u) % 15),
                                  round % 7 == 3 ? "hide" : "click", 1'767'225'000'000 + round * 1000));
      EXPECT_TRUE(w.Events(batch).ok());
    }
  };
  const uint64_t initial = w.live->events_applied();
  std::atomic<int> running{2};
  std::thread a([&] { writer(0, 0); --running; }), b([&] { writer(5, 15); --running; });
  std::vector<std::pair<std::string, CheckpointInfo>> written;
  while (running.load() > 0) {  // checkpoints, one after another, for as long as events arrive
    const std::string path = w.dir.path() + "/live-" + std::to_string(written.size()) + ".ckpt";
    auto info = w.live->WriteCheckpoint(path, w.clock.NowMillis());
    ASSERT_TRUE(info.ok()) << info.status();
    written.emplace_back(path, *info);
  }
  a.join();
  b.join();
  const uint64_t final_events = w.live->events_applied();
  // Each one written mid-ingest, plus the log's tail, is the live state.
  int restored_mid_ingest = 0;
  uint64_t last_checked = 0;
  for (const auto& [path, info] : written) {
    if (info.events <= initial || info.events >= final_events || info.events == last_checked) continue;
    if (restored_mid_ingest == 4) break;
    last_checked = info.events;
    ++restored_mid_ingest;
    LiveState restored(w.config.actions);
    restored.SetCreatorOf(CreatorsOf(w.registry));
    auto report = restored.Load(*w.store, path, Known(w.registry));
    ASSERT_TRUE(report.ok());
    ASSERT_TRUE(report->from_checkpoint) << report->checkpoint_refused;
    EXPECT_EQ(report->checkpoint.events + report->replayed, final_events) << path;
    EXPECT_GT(report->replayed, 0u) << path;
    ExpectSameState(restored, *w.live, w.registry, w.clock.NowMillis(), /*interleaved=*/true);
  }
  EXPECT_GT(restored_mid_ingest, 0) << "no checkpoint was written while events arrived";
  uint64_t before = 0;
  for (const auto& [path, info] : written) {  // each covers at least what the one before did
    EXPECT_GE(info.events, before);
    before = info.events;
  }
}

}  // namespace
}  // namespace affinity
