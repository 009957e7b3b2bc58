// The control state's seams (docs/architecture.md, "Control state behind
// interfaces"): a second implementation of each plugs in without the readers
// noticing, and nothing reaches the single-machine files behind its back.
#include <gtest/gtest.h>

#include <filesystem>
#include <mutex>

#include "features/snapshot.h"
#include "features/snapshot_manager.h"
#include "features/snapshot_pointer.h"
#include "models/model_registry.h"
#include "state/live_state.h"
#include "store/event_log.h"
#include "testing/small_snapshot.h"
#include "testing/temp_dir.h"
#include "testing/tiny_model.h"
#include "testing/world.h"

namespace affinity {
namespace {

namespace fs = std::filesystem;

// Registry state held in memory, as a replicated key-value store would hold it.
class MemoryRegistryState : public RegistryStateStore {
 public:
  absl::StatusOr<RegistryState> Read() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return state_;
  }
  absl::Status Update(const Change& change, bool create) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!create && !exists_) return absl::NotFoundError("no registry");
    RegistryState next = state_;
    auto changed = change(next);
    if (!changed.ok()) return changed.status();
    if (*changed) state_ = std::move(next), exists_ = true, ++writes;
    return absl::OkStatus();
  }
  std::string Where() const override { return "memory"; }
  int writes = 0;

 private:
  mutable std::mutex mu_;
  RegistryState state_;
  bool exists_ = false;
};

class MemoryPointer : public SnapshotPointer {
 public:
  std::string Current() const override { return version; }
  absl::Status Set(const std::string& v) override {
    version = v;
    return absl::OkStatus();
  }
  std::string Where() const override { return "memory"; }
  std::string version;
};

// Forwards to a store's log and counts the scans: a log that is not the store.
class ForwardingLog : public EventLog {
 public:
  explicit ForwardingLog(EventLog* log) : log_(log) {}
  absl::Status AppendEvents(std::vector<Event>& events, const std::vector<FollowChange>& follows,
                            const IdempotencyRecord* key) override {
    return log_->AppendEvents(events, follows, key);
  }
  absl::Status ScanEventsFrom(uint64_t from, const std::function<bool(const Event&)>& fn) const override {
    ++scans;
    return log_->ScanEventsFrom(from, fn);
  }
  absl::StatusOr<std::vector<Event>> ReadEvents(const std::vector<uint64_t>& offsets) const override {
    return log_->ReadEvents(offsets);
  }
  absl::Status PruneEvents() override { return log_->PruneEvents(); }
  int64_t EventRetentionMs() const override { return log_->EventRetentionMs(); }
  uint64_t NextOffset() const override { return log_->NextOffset(); }
  absl::Status CatchUp() override { return log_->CatchUp(); }
  mutable int scans = 0;

 private:
  EventLog* log_;
};

ModelVersion Meta(double ndcg) {
  ModelVersion v;
  v.source = "test";
  v.ndcg = ndcg;
  v.blend_ndcg = ndcg / 2;
  return v;
}

TEST(ControlStateTest, TheModelRegistryKeepsItsStateWhereItsStateStoreSays) {
  testing::TempDir dir;
  auto state = std::make_shared<MemoryRegistryState>();
  ModelRegistry registry(dir.path(), state);
  ASSERT_TRUE(registry.Register(*testing::TinyModel(1), Meta(0.3)).ok());
  ASSERT_TRUE(registry.Register(*testing::TinyModel(2), Meta(0.4)).ok());
  ASSERT_TRUE(registry.Promote("m000001", 0.002).ok());
  ASSERT_TRUE(registry.StartCanary("m000002", CanaryPlan{}).ok());
  ASSERT_TRUE(registry.MarkCanaryRunning("m000002", "canary-m000002").ok());
  ASSERT_TRUE(registry.FinishCanary("m000002", true, "won").ok());

  RegistryState st = *state->Read();
  EXPECT_EQ(st.current, "m000002");
  EXPECT_EQ(st.history, std::vector<std::string>{"m000001"});
  EXPECT_EQ(st.Find("m000002")->rollout.state, ModelState::kPromoted);
  EXPECT_EQ(state->writes, 6);
  // The model files are in their version directories; the state is not on disk.
  EXPECT_FALSE(fs::exists(dir.path() + "/models/registry.json"));
  EXPECT_TRUE(registry.Load("m000002").ok());
  // A copy of the registry shares the state.
  ModelRegistry copy = registry;
  EXPECT_EQ(copy.Read()->current, "m000002");
  // The same data dir's file registry knows nothing of it.
  EXPECT_TRUE(ModelRegistry(dir.path()).Read()->versions.empty());
}

TEST(ControlStateTest, ARegistryChangeThatFailsWritesNothing) {
  testing::TempDir dir;
  auto state = std::make_shared<MemoryRegistryState>();
  ModelRegistry registry(dir.path(), state);
  ASSERT_TRUE(registry.Register(*testing::TinyModel(1), Meta(0.3)).ok());
  EXPECT_EQ(registry.Promote("m000009", 0.002).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(state->writes, 1);
  EXPECT_EQ(state->Read()->current, "");
}

TEST(ControlStateTest, SnapshotsArePublishedToAndServedFromTheirPointer) {
  testing::World world;
  world.BuildSmall();
  auto pointer = std::make_shared<MemoryPointer>();
  auto first = testing::SmallSnapshot(world);
  auto v1 = PublishSnapshot(world.dir.path(), *first, "", 3, pointer);
  ASSERT_TRUE(v1.ok()) << v1.status();
  EXPECT_EQ(pointer->version, *v1);
  EXPECT_EQ(CurrentSnapshotVersion(world.dir.path()), "");  // CURRENT is not written
  auto second = testing::SmallSnapshot(world);
  auto v2 = PublishSnapshot(world.dir.path(), *second, "", 3);  // the data dir's own CURRENT
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ(CurrentSnapshotVersion(world.dir.path()), *v2);
  EXPECT_EQ(pointer->version, *v1);

  SnapshotManager manager(world.dir.path(), 1000, 64, {}, &world.clock, pointer);
  ASSERT_TRUE(manager.LoadInitial().ok());
  EXPECT_EQ(manager.Get()->version, *v1);
  pointer->version = *v2;
  auto swapped = manager.Refresh();
  ASSERT_TRUE(swapped.ok()) << swapped.status();
  EXPECT_TRUE(*swapped);
  EXPECT_EQ(manager.Get()->version, *v2);
}

TEST(ControlStateTest, LiveStateReplaysFromAnEventLogThatIsNotTheStore) {
  testing::World world;
  world.BuildSmall();
  ForwardingLog log(world.store.get());
  LiveState replayed(world.config.actions);
  auto report = replayed.Load(log);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_GT(log.scans, 0);
  EXPECT_EQ(replayed.applied_offset(), world.store->NextOffset());
  const Ref u0 = *world.registry.Find("u0");
  const Ref c0 = *world.registry.Find("c0");
  EXPECT_EQ(replayed.Followers(c0), world.live->Followers(c0));
  EXPECT_EQ(replayed.Followers(c0), 10u);
  EXPECT_TRUE(replayed.Viewer(u0)->Follows(c0));
}

}  // namespace
}  // namespace affinity
