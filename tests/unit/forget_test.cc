// Forgetting a person (docs/security.md, "Forget"): the store's part and the
// audit log's viewer index.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "audit/audit_log.h"
#include "state/live_state.h"
#include "store/store.h"
#include "testing/temp_dir.h"

namespace affinity {
namespace {

using testing::TempDir;

const Ref kAnn(Kind::kUser, 0), kBob(Kind::kUser, 1), kItem(Kind::kItem, 0), kCreator(Kind::kCreator, 0);

Event MakeEvent(Ref viewer, Ref entity, int64_t ts) {
  Event e;
  e.ts = ts;
  e.viewer = viewer;
  e.entity = entity;
  e.action = Action::kClick;
  return e;
}

// ann and bob, an item and its creator; ann and bob engage with the item and
// bob with ann; they follow each other and bob follows the creator; both have
// experiment counters and audit records.
void WriteWorld(Store& store) {
  EntityRecord ann{kAnn, "ann", Ref(), "cohort-a", "{\"city\":\"Oslo\"}"};
  ann.labels = {"vip"};
  ASSERT_TRUE(store.PutEntities({ann, {kBob, "bob", Ref(), "cohort-b", "{}"},
                                 {kCreator, "c1", Ref(), "", ""}, {kItem, "i1", kCreator, "", ""}}).ok());
  std::vector<Event> events = {MakeEvent(kAnn, kItem, 1000), MakeEvent(kBob, kItem, 1001),
                               MakeEvent(kBob, kAnn, 1002), MakeEvent(kAnn, kItem, 1003)};
  ASSERT_TRUE(store.AppendEvents(events, {{kAnn, kBob, true, 1}, {kBob, kAnn, true, 2}, {kBob, kCreator, true, 3}}).ok());
  ASSERT_TRUE(store.AddCounters({{"k/e1/v/ann", {1, 2}}, {"k/e1/v/bob", {3}}, {"k/e1/a/0", {4}},
                                 {"k/e1/v/xann", {5}}}).ok());
  Store::AuditWrite w;
  w.records = {{"q_1", "{}"}, {"q_2", "{}"}, {"q_3", "{}"}};
  w.index = {{"ann", "q_1"}, {"bob", "q_2"}, {"ann", "q_3"}};
  ASSERT_TRUE(store.WriteAudit(w).ok());
}

TEST(ForgetStoreTest, RemovesEventsFollowsCountersAndIndexOfThePersonAndKeepsOthers) {
  TempDir dir;
  auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary);
  WriteWorld(*store);
  ASSERT_EQ(*store->AuditRecordsOf("ann"), (std::vector<std::string>{"q_1", "q_3"}));

  auto summary = store->Forget("ann", 5000);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->ref, kAnn);
  EXPECT_EQ(summary->events, 3u);  // two as viewer, one as entity
  EXPECT_EQ(summary->follows, 2u);
  EXPECT_EQ(summary->experiment_counters, 1u);
  EXPECT_EQ(summary->index_entries, 2u);

  std::vector<uint64_t> kept;
  ASSERT_TRUE(store->ScanEvents([&](const Event& e) {
    EXPECT_NE(e.viewer, kAnn);
    EXPECT_NE(e.entity, kAnn);
    kept.push_back(e.offset);
    return true;
  }).ok());
  EXPECT_EQ(kept, (std::vector<uint64_t>{1}));
  EXPECT_EQ(store->NextOffset(), 4u);  // offsets are never reused
  std::vector<std::pair<Ref, Ref>> follows;
  ASSERT_TRUE(store->ScanFollows([&](Ref a, Ref b, int64_t) { follows.emplace_back(a, b); }).ok());
  EXPECT_EQ(follows, (std::vector<std::pair<Ref, Ref>>{{kBob, kCreator}}));
  std::vector<std::string> counters;
  ASSERT_TRUE(store->ScanExperimentRecords("k/", [&](std::string_view k, std::string_view) {
    counters.emplace_back(k);
  }).ok());
  EXPECT_EQ(counters, (std::vector<std::string>{"k/e1/a/0", "k/e1/v/bob", "k/e1/v/xann"}));
  EXPECT_TRUE(store->AuditRecordsOf("ann")->empty());
  EXPECT_EQ(*store->AuditRecordsOf("bob"), (std::vector<std::string>{"q_2"}));
}

TEST(ForgetStoreTest, LeavesATombstoneThatKeepsTheSlotAndNothingElse) {
  TempDir dir;
  {
    auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary);
    WriteWorld(*store);
    ASSERT_TRUE(store->Forget("ann", 5000).ok());
  }
  auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary);
  std::vector<EntityRecord> users;
  ASSERT_TRUE(store->ScanEntities([&](const EntityRecord& e) {
    if (e.ref.kind() == Kind::kUser) users.push_back(e);
  }).ok());
  ASSERT_EQ(users.size(), 2u);
  auto tomb = std::find_if(users.begin(), users.end(), [](const EntityRecord& e) { return e.ref == kAnn; });
  ASSERT_NE(tomb, users.end());
  EXPECT_EQ(tomb->ext_id, ForgottenKey(kAnn));
  EXPECT_TRUE(tomb->deleted);
  EXPECT_TRUE(tomb->cohort.empty());
  EXPECT_TRUE(tomb->attributes.empty());
  EXPECT_TRUE(tomb->labels.empty());
  auto forgotten = store->ForgottenEntities();
  ASSERT_TRUE(forgotten.ok());
  ASSERT_EQ(forgotten->size(), 1u);
  EXPECT_EQ((*forgotten)[0].ref, kAnn);
  EXPECT_EQ((*forgotten)[0].forgotten_ms, 5000);
  EXPECT_EQ((*forgotten)[0].log_offset, 4u);
}

TEST(ForgetStoreTest, AnUnknownIdIsNotFoundAndChangesNothing) {
  TempDir dir;
  auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary);
  WriteWorld(*store);
  EXPECT_EQ(store->Forget("nobody", 5000).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->Forget(ForgottenKey(kAnn), 5000).status().code(), absl::StatusCode::kNotFound);
  int events = 0;
  ASSERT_TRUE(store->ScanEvents([&](const Event&) { return ++events > 0; }).ok());
  EXPECT_EQ(events, 4);
  EXPECT_TRUE(store->ForgottenEntities()->empty());
}

TEST(ForgetStoreTest, TheAuditLogIndexesEachRecordByItsViewerInTheSameWrite) {
  TempDir dir;
  auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary);
  {
    AuditLog log(store.get());
    log.Record("q_a", "{\"request_id\":\"q_a\",\"ts\":1}", "ann");
    log.Record("q_b", "{\"request_id\":\"q_b\",\"ts\":1}", "bob");
    log.Record("g_1", "{\"request_id\":\"g_1\",\"ts\":1}");
    log.Flush();
  }
  EXPECT_EQ(*store->AuditRecordsOf("ann"), (std::vector<std::string>{"q_a"}));
  EXPECT_EQ(*store->AuditRecordsOf("bob"), (std::vector<std::string>{"q_b"}));
}


Event At(uint64_t offset, Ref viewer, Ref entity, Action action, int64_t ts) {
  Event e = MakeEvent(viewer, entity, ts);
  e.offset = offset;
  e.action = action;
  return e;
}

TEST(ForgetLiveStateTest, ForgettingLeavesWhatTheOtherEventsAloneWouldHaveBuilt) {
  const Ref carl(Kind::kUser, 2), other_item(Kind::kItem, 1);
  const std::vector<Event> all = {
      At(0, kAnn, kItem, Action::kClick, 1'000'000), At(1, kBob, kItem, Action::kClick, 2'000'000),
      At(2, kBob, kAnn, Action::kFollow, 3'000'000), At(3, kAnn, kBob, Action::kFollow, 4'000'000),
      At(4, carl, other_item, Action::kLike, 5'000'000), At(5, kBob, other_item, Action::kClick, 6'000'000),
      At(6, kBob, kAnn, Action::kClick, 7'000'000)};
  std::vector<Event> removed, kept;
  for (const Event& e : all) (e.viewer == kAnn || e.entity == kAnn ? removed : kept).push_back(e);
  LiveState forgot(ActionWeights{}), never(ActionWeights{});
  forgot.Apply(all);
  forgot.Forget(kAnn, removed);
  never.Apply(kept);

  const int64_t now = 8'000'000;
  for (Ref r : {kItem, other_item, kBob, kAnn}) {
    EXPECT_NEAR(forgot.Engagement(r, now), never.Engagement(r, now), 1e-4) << r.bits;
    EXPECT_EQ(forgot.Followers(r), never.Followers(r)) << r.bits;
    for (int h = 0; h < DecayedCounters::kHalfLives; ++h)
      EXPECT_NEAR(forgot.EntityCounts(r, now)[h], never.EntityCounts(r, now)[h], 1e-4) << r.bits;
  }
  for (Ref viewer : {kAnn, kBob, carl}) {
    const auto a = forgot.Viewer(viewer), b = never.Viewer(viewer);
    EXPECT_EQ(a->follows, b->follows) << viewer.bits;
    EXPECT_EQ(a->engaged, b->engaged) << viewer.bits;
    EXPECT_EQ(a->feedback, b->feedback) << viewer.bits;
    EXPECT_EQ(a->recent.size(), b->recent.size()) << viewer.bits;
    EXPECT_EQ(a->events, b->events) << viewer.bits;
    for (int h = 0; h < DecayedCounters::kHalfLives; ++h)
      EXPECT_NEAR(forgot.ViewerCounts(viewer, now)[h], never.ViewerCounts(viewer, now)[h], 1e-4) << viewer.bits;
  }
  for (Ref r : forgot.Recent(Kind::kUser, 10)) EXPECT_NE(r, kAnn);
  EXPECT_EQ(forgot.LastEngagedMs(kAnn), 0);
}

}  // namespace
}  // namespace affinity
