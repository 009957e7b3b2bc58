#include <gtest/gtest.h>

#include <random>

#include "base/strings.h"
#include "models/logged_training.h"
#include "models/model_registry.h"
#include "models/model_watcher.h"
#include "ranking/learned_ranker.h"
#include "serving/query_engine.h"
#include "testing/small_snapshot.h"
#include "testing/temp_dir.h"
#include "testing/tiny_model.h"
#include "testing/world.h"
#include "config/config.h"

namespace affinity {
namespace {

using testing::TinyModel;

ModelVersion Meta(double ndcg, double blend, double current = -1) {
  ModelVersion v;
  v.source = "test";
  v.ndcg = ndcg;
  v.blend_ndcg = blend;
  v.current_ndcg = current;
  return v;
}

TEST(ModelRegistryTest, RegistersVersionsWithTheirMetadata) {
  testing::TempDir dir;
  ModelRegistry reg(dir.path());
  auto v1 = reg.Register(*TinyModel(1), Meta(0.30, 0.25));
  auto v2 = reg.Register(*TinyModel(2), Meta(0.31, 0.25));
  ASSERT_TRUE(v1.ok() && v2.ok());
  EXPECT_EQ(*v1, "m000001");
  EXPECT_EQ(*v2, "m000002");
  auto st = *reg.Read();
  ASSERT_EQ(st.versions.size(), 2u);
  EXPECT_EQ(st.current, "");
  EXPECT_DOUBLE_EQ(st.versions[1].ndcg, 0.31);
  EXPECT_GT(st.versions[0].created_ms, 0);
  EXPECT_TRUE(reg.Load("m000002").ok());
}

TEST(ModelRegistryTest, DatesVersionsAndDecisionsByTheClockItIsGiven) {
  testing::TempDir dir;
  ManualClock clock(1'234'000);
  ModelRegistry reg(dir.path(), &clock);
  ASSERT_TRUE(reg.Register(*TinyModel(1), Meta(0.30, 0.25)).ok());
  clock.Advance(5'000);
  ASSERT_TRUE(reg.Promote("m000001", 0.002).ok());
  auto st = *reg.Read();
  EXPECT_EQ(st.versions[0].created_ms, 1'234'000);
  EXPECT_EQ(st.versions[0].rollout.decided_ms, 1'239'000);
}

TEST(ModelWatcherTest, StampsARefusedModelWithTheClockItIsGiven) {
  testing::TempDir dir;
  ManualClock clock(7'000'000);
  ModelRegistry reg(dir.path());
  ModelWatcher watcher(dir.path(), 10, [](std::shared_ptr<const LearnedRanker>) {}, &clock);
  ASSERT_TRUE(reg.Register(*TinyModel(1), Meta(0.3, 0.2)).ok());
  ASSERT_TRUE(WriteFileAtomic(reg.dir() + "/m000001/model.json", "{ not a model"));
  ASSERT_TRUE(reg.Promote("m000001", 0.01).ok());
  EXPECT_FALSE(watcher.Refresh().ok());
  ASSERT_FALSE(watcher.refused().empty());
  EXPECT_EQ(watcher.refused()[0].since_ms, 7'000'000);
}

TEST(ModelRegistryTest, PromoteThenRollbackRestoresThePreviousModel) {
  testing::TempDir dir;
  ModelRegistry reg(dir.path());
  ASSERT_TRUE(reg.Register(*TinyModel(1), Meta(0.30, 0.25)).ok());
  ASSERT_TRUE(reg.Register(*TinyModel(2), Meta(0.32, 0.25, 0.30)).ok());
  ASSERT_TRUE(reg.Promote("m000001", 0.002).ok());
  ASSERT_TRUE(reg.Promote("m000002", 0.002).ok());
  EXPECT_EQ(reg.Read()->current, "m000002");
  auto back = reg.Rollback();
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, "m000001");
  EXPECT_EQ(reg.Read()->current, "m000001");
  back = reg.Rollback();  // from the first model: the blend
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, "");
  EXPECT_EQ(reg.Read()->current, "");
  EXPECT_TRUE(absl::IsNotFound(reg.Promote("m000009", 0.002)));
}

// Issue 23, bug 5: rollback from the first promoted model returns serving to
// the blend (no current model), as the runbooks say; with none current it refuses.
TEST(ModelRegistryTest, RollbackFromTheFirstModelReturnsToTheBlend) {
  testing::TempDir dir;
  ModelRegistry reg(dir.path());
  ASSERT_TRUE(reg.Register(*TinyModel(1), Meta(0.30, 0.25)).ok());
  ASSERT_TRUE(reg.Promote("m000001", 0.002).ok());
  auto back = reg.Rollback();
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, "");
  auto st = *reg.Read();
  EXPECT_EQ(st.current, "");
  EXPECT_EQ(st.Find("m000001")->rollout.state, ModelState::kRolledBack);
  EXPECT_NE(st.Find("m000001")->rollout.note.find("the blend ranks again"), std::string::npos);
  absl::Status again = reg.Rollback().status();
  EXPECT_TRUE(absl::IsFailedPrecondition(again)) << again;
  EXPECT_NE(again.message().find("no model is current"), std::string::npos) << again;
}

// Issue 23, bug 6: a version promoted by hand is "promoted" whatever it was
// before (a rolled-back canary, a refused model with --force), and a version
// rolled back from is "rolled-back".
TEST(ModelRegistryTest, AHandPromotedModelIsPromotedWhateverItsStateWas) {
  testing::TempDir dir;
  ModelRegistry reg(dir.path());
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(reg.Register(*TinyModel(i), Meta(0.3, 0.2)).ok());
  ASSERT_TRUE(reg.StartCanary("m000001", CanaryPlan{}).ok());
  ASSERT_TRUE(reg.FinishCanary("m000001", false, "CTR significantly lower").ok());
  ASSERT_EQ(reg.Read()->Find("m000001")->rollout.state, ModelState::kRolledBack);
  ASSERT_TRUE(reg.Promote("m000001", 0.002).ok());
  auto st = *reg.Read();
  EXPECT_EQ(st.Find("m000001")->rollout.state, ModelState::kPromoted);
  EXPECT_NE(st.Find("m000001")->rollout.note.find("by hand"), std::string::npos);
  ASSERT_TRUE(reg.Promote("m000002", 0.002, /*force=*/true).ok());
  st = *reg.Read();
  EXPECT_EQ(st.Find("m000002")->rollout.state, ModelState::kPromoted);
  EXPECT_NE(st.Find("m000002")->rollout.note.find("--force"), std::string::npos);
  auto back = reg.Rollback();
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, "m000001");
  st = *reg.Read();
  EXPECT_EQ(st.Find("m000002")->rollout.state, ModelState::kRolledBack);
  EXPECT_EQ(st.Find("m000001")->rollout.state, ModelState::kPromoted);
  EXPECT_EQ(st.Find("m000003")->rollout.state, ModelState::kRegistered);
  // The states are written as their names, and read back.
  const std::string json = RegistryJson(st);
  EXPECT_NE(json.find("\"state\":\"rolled-back\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"state\":\"registered\""), std::string::npos) << json;
  auto parsed = ParseRegistryJson(json);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->Find("m000002")->rollout.state, ModelState::kRolledBack);
}

TEST(ModelRegistryTest, GateRefusesAModelWorseThanTheCurrentOne) {
  testing::TempDir dir;
  ModelRegistry reg(dir.path());
  ASSERT_TRUE(reg.Register(*TinyModel(1), Meta(0.30, 0.25)).ok());
  ASSERT_TRUE(reg.Promote("m000001", 0.002).ok());
  // Worse than the current model on the same held-out data by more than the tolerance.
  ASSERT_TRUE(reg.Register(*TinyModel(2), Meta(0.29, 0.25, 0.30)).ok());
  absl::Status s = reg.Promote("m000002", 0.002);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_NE(s.message().find("below the current model m000001"), std::string::npos) << s;
  EXPECT_EQ(reg.Read()->current, "m000001");
  // Within the tolerance, it passes; --force skips the gate.
  EXPECT_TRUE(reg.Promote("m000002", 0.02).ok());
  ASSERT_TRUE(reg.Register(*TinyModel(3), Meta(0.10, 0.25, 0.30)).ok());
  EXPECT_TRUE(reg.Promote("m000003", 0.002, /*force=*/true).ok());
}

TEST(ModelRegistryTest, GateComparesAFirstModelWithTheBlend) {
  testing::TempDir dir;
  ModelRegistry reg(dir.path());
  ASSERT_TRUE(reg.Register(*TinyModel(1), Meta(0.20, 0.25)).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(reg.Promote("m000001", 0.002)));
  EXPECT_EQ(reg.Read()->current, "");
}

TEST(ModelRegistryTest, ACanaryIsPromotedOrRolledBackOnceAndANewerCanarySupersedesIt) {
  testing::TempDir dir;
  ModelRegistry reg(dir.path());
  for (int i = 1; i <= 4; ++i) ASSERT_TRUE(reg.Register(*TinyModel(i), Meta(0.3, 0.2)).ok());
  CanaryPlan plan{25, 300, 0.2, 0.5};
  ASSERT_TRUE(reg.StartCanary("m000001", plan).ok());
  auto st = *reg.Read();
  EXPECT_EQ(st.canary, "m000001");
  EXPECT_EQ(st.Find("m000001")->rollout.state, ModelState::kCanaryPending);
  EXPECT_EQ(st.Find("m000001")->rollout.share, 25);
  EXPECT_EQ(st.Find("m000001")->rollout.min_viewers, 300);
  ASSERT_TRUE(reg.MarkCanaryRunning("m000001", "canary-m000001").ok());
  EXPECT_EQ(reg.Read()->Find("m000001")->rollout.state, ModelState::kCanary);
  // Promoted: current, and the canary slot is free; a second decision is a no-op.
  ASSERT_TRUE(reg.FinishCanary("m000001", true, "no guardrail breached").ok());
  ASSERT_TRUE(reg.FinishCanary("m000001", false, "too late").ok());
  st = *reg.Read();
  EXPECT_EQ(st.current, "m000001");
  EXPECT_EQ(st.canary, "");
  EXPECT_EQ(st.Find("m000001")->rollout.state, ModelState::kPromoted);
  EXPECT_EQ(st.Find("m000001")->rollout.note, "no guardrail breached");
  // Rolled back: the current model stays.
  ASSERT_TRUE(reg.StartCanary("m000002", plan).ok());
  ASSERT_TRUE(reg.FinishCanary("m000002", false, "CTR significantly lower").ok());
  st = *reg.Read();
  EXPECT_EQ(st.current, "m000001");
  EXPECT_EQ(st.Find("m000002")->rollout.state, ModelState::kRolledBack);
  // A newer canary supersedes one still undecided; promoting a canary by hand ends it.
  ASSERT_TRUE(reg.StartCanary("m000003", plan).ok());
  ASSERT_TRUE(reg.StartCanary("m000004", plan).ok());
  st = *reg.Read();
  EXPECT_EQ(st.canary, "m000004");
  EXPECT_EQ(st.Find("m000003")->rollout.state, ModelState::kSuperseded);
  ASSERT_TRUE(reg.Promote("m000004", 0.002).ok());
  st = *reg.Read();
  EXPECT_EQ(st.canary, "");
  EXPECT_EQ(st.current, "m000004");
  EXPECT_EQ(st.Find("m000004")->rollout.state, ModelState::kPromoted);
  EXPECT_NE(st.Find("m000004")->rollout.note.find("by hand"), std::string::npos);
  EXPECT_EQ(st.history, (std::vector<std::string>{"m000001"}));
}

TEST(ModelWatcherTest, InstallsTheCurrentModelAndSwapsOnPromotion) {
  testing::TempDir dir;
  ModelRegistry reg(dir.path());
  std::shared_ptr<const LearnedRanker> installed;
  int installs = 0;
  ModelWatcher watcher(dir.path(), 10, [&](std::shared_ptr<const LearnedRanker> m) {
    installed = std::move(m);
    ++installs;
  });
  EXPECT_FALSE(*watcher.Refresh());  // no registry yet: nothing to do
  ASSERT_TRUE(reg.Register(*TinyModel(1), Meta(0.3, 0.2)).ok());
  ASSERT_TRUE(reg.Register(*TinyModel(2), Meta(0.3, 0.2, 0.3)).ok());
  ASSERT_TRUE(reg.Promote("m000001", 0.01).ok());
  EXPECT_TRUE(*watcher.Refresh());
  ASSERT_TRUE(installed);
  EXPECT_EQ(installed->version(), "lambdamart-m000001");
  EXPECT_FALSE(*watcher.Refresh());  // unchanged
  ASSERT_TRUE(reg.Promote("m000002", 0.01).ok());
  EXPECT_TRUE(*watcher.Refresh());
  EXPECT_EQ(installed->version(), "lambdamart-m000002");
  EXPECT_EQ(installs, 2);
}

TEST(ModelWatcherTest, KeepsThePreviousModelWhenTheNewOneCannotLoad) {
  testing::TempDir dir;
  ModelRegistry reg(dir.path());
  std::shared_ptr<const LearnedRanker> installed;
  ModelWatcher watcher(dir.path(), 10, [&](std::shared_ptr<const LearnedRanker> m) { installed = std::move(m); });
  ASSERT_TRUE(reg.Register(*TinyModel(1), Meta(0.3, 0.2)).ok());
  ASSERT_TRUE(reg.Register(*TinyModel(2), Meta(0.3, 0.2, 0.3)).ok());
  ASSERT_TRUE(reg.Promote("m000001", 0.01).ok());
  ASSERT_TRUE(*watcher.Refresh());
  ASSERT_TRUE(WriteFileAtomic(reg.dir() + "/m000002/model.json", "{ not a model"));
  ASSERT_TRUE(reg.Promote("m000002", 0.01).ok());
  EXPECT_FALSE(watcher.Refresh().ok());
  EXPECT_EQ(installed->version(), "lambdamart-m000001");
  EXPECT_FALSE(watcher.last_error().empty());
  // Back to a loadable current model: the error clears with the next look.
  ASSERT_TRUE(reg.Promote("m000001", 0.01, /*force=*/true).ok());
  auto back = watcher.Refresh();
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(watcher.last_error(), "");
}

// Serves queries with the audit log on, answers some results with feedback that
// names the response, and trains from what was logged.
TEST(LoggedTrainingTest, TrainsFromAuditedInputsAndFeedbackNamingTheResponse) {
  testing::World world;
  world.BuildSmall();
  auto snapshot = testing::SmallSnapshot(world);
  AuditLog audit(world.store.get());
  world.config.serving.new_creator_share = 0;
  world.config.serving.log_ranker_inputs_share = 1.0;
  QueryEngine engine(world.config.serving, &world.registry, world.live.get(), nullptr, &audit, &world.clock);
  std::vector<RawEvent> feedback;
  int responses = 0;
  for (int round = 0; round < 6; ++round)
    for (int u = 0; u < 10; ++u) {
      QueryRequest q;
      q.viewer_id = "u" + std::to_string(u);
      q.k = 10;
      auto r = engine.QueryWith(q, snapshot.get());
      ASSERT_TRUE(r.ok());
      ++responses;
      const std::string ctx = "{\"request_id\":\"" + r->request_id + "\"}";
      for (size_t i = 0; i < r->results.size(); ++i) {
        RawEvent e = testing::World::Ev(q.viewer_id, r->results[i].entity_id, "impression", world.clock.NowMillis());
        e.context = ctx;
        feedback.push_back(e);
        if ((i + size_t(u) + size_t(round)) % 4 == 0) {  // a click on some of them
          e.action = "click";
          feedback.push_back(e);
        }
      }
    }
  audit.Flush();
  ASSERT_TRUE(world.Events(feedback).ok());
  Config config = world.config;
  config.ranker.min_groups = 10;
  config.ranker.rounds = 5;
  config.ranker.auto_promote = false;
  auto report = TrainFromLoggedImpressions(world.dir.path(), *world.store, world.registry, config.ranker, config.batch.threads);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_TRUE(report->trained) << report->note;
  EXPECT_EQ(report->groups, size_t(responses));
  EXPECT_GT(report->rows, size_t(responses) * 5);
  ModelRegistry reg(world.dir.path());
  auto st = *reg.Read();
  ASSERT_EQ(st.versions.size(), 1u);
  EXPECT_EQ(st.versions[0].source, "logged-impressions");
  EXPECT_GT(st.versions[0].watermark_offset, 0u);
  EXPECT_EQ(st.current, "");  // not promoted without auto_promote
  EXPECT_EQ(st.canary, "");
  // The default ships a model that passes the gate as a canary, not as the current model.
  config.ranker.auto_promote = true;
  config.ranker.gate_tolerance = 1;
  report = TrainFromLoggedImpressions(world.dir.path(), *world.store, world.registry, config.ranker, config.batch.threads);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->canary) << report->note;
  EXPECT_FALSE(report->promoted);
  st = *reg.Read();
  EXPECT_EQ(st.current, "");
  EXPECT_EQ(st.canary, report->version);
  EXPECT_EQ(st.Find(report->version)->rollout.state, ModelState::kCanaryPending);
  EXPECT_EQ(st.Find(report->version)->rollout.share, config.ranker.canary_share);
  // Issue 23, bug 6: a model the gate refuses keeps the refusal in the
  // registry (model list, /admin/models and the operator page show it).
  config.ranker.gate_tolerance = -1;  // a gate nothing passes
  report = TrainFromLoggedImpressions(world.dir.path(), *world.store, world.registry, config.ranker, config.batch.threads);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_FALSE(report->canary);
  st = *reg.Read();
  EXPECT_EQ(st.Find(report->version)->rollout.state, ModelState::kRefused);
  EXPECT_EQ(st.Find(report->version)->rollout.note, report->note);
  EXPECT_NE(report->note.find("not shipped: validation NDCG"), std::string::npos) << report->note;
  EXPECT_NE(RegistryJson(st).find("\"state\":\"refused\""), std::string::npos);
  EXPECT_EQ(st.Find(report->version)->holdout, HoldoutBy::kRequestId);
}

TEST(LoggedTrainingTest, SaysWhyWhenThereIsTooLittleFeedback) {
  testing::World world;
  world.BuildSmall();
  auto report = TrainFromLoggedImpressions(world.dir.path(), *world.store, world.registry, world.config.ranker, world.config.batch.threads);
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->trained);
  EXPECT_NE(report->note.find("no model trained yet"), std::string::npos);
}

}  // namespace
}  // namespace affinity
