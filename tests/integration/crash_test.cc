// Crash tests in the manner of RocksDB's: a server under concurrent writers
// (feedback batches, entity upserts, checkpoints) is killed with SIGKILL at
// random points, restarted on the same data dir, and checked: every
// acknowledged batch is there in full, no batch is there in part, the counts
// add up, and the restarted server answers. The seed is printed; set
// AFFINITY_CRASH_SEED to replay a run.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "integration/server_fixture.h"

namespace affinity {
namespace {

struct Batch {
  std::string viewer;  // a viewer of its own: its events are the batch's
  int size = 0;
  bool acknowledged = false;
};

class CrashTest : public ServerTest {
 protected:
  // One writer: batches for fresh viewers until a request fails (the kill).
  void Writer(int round, int writer, uint32_t seed, std::vector<Batch>* out, std::mutex* mu) {
    std::mt19937 rng(seed);
    for (int n = 0;; ++n) {
      Batch b;
      b.viewer = "crash-r" + std::to_string(round) + "-w" + std::to_string(writer) + "-b" + std::to_string(n);
      b.size = 1 + int(rng() % 50);
      std::string body = "{\"events\":[";
      const int first = int(rng() % 1400);
      for (int i = 0; i < b.size; ++i)
        body += std::string(i ? "," : "") + "{\"viewer_id\":\"" + b.viewer + "\",\"entity_id\":\"i" +
                std::to_string(first + i) + "\",\"action\":\"click\"}";
      body += "]}";
      {
        std::lock_guard<std::mutex> lock(*mu);
        out->push_back(b);  // in flight: stored in full or not at all
      }
      const testing::HttpResult r = Post(port_, "/affinity/feedback", body);
      if (r.status != 202) return;
      std::lock_guard<std::mutex> lock(*mu);
      for (auto& x : *out)
        if (x.viewer == b.viewer) x.acknowledged = true;
    }
  }

  // Entity upserts and checkpoints beside the writers, so that kills land in
  // those too.
  void Operator(int round, std::atomic<bool>* stop) {
    for (int n = 0; !stop->load(); ++n) {
      const std::string id = "crash-e" + std::to_string(round) + "-" + std::to_string(n);
      const testing::HttpResult r =
          Post(port_, "/affinity/entities", R"({"entities":[{"id":")" + id + R"(","kind":"item"}]})");
      if (r.status <= 0) return;
      if (n % 20 == 0 && Post(port_, "/admin/checkpoint", "").status <= 0) return;
    }
  }

  int64_t StoredEvents(const std::string& viewer) {
    const testing::HttpResult r = Get(port(), "/affinity/viewers/" + viewer + "/events?limit=100");
    if (r.status == 404) return 0;  // a viewer none of whose events is stored
    EXPECT_EQ(r.status, 200) << r.body;
    if (r.status != 200) return -1;
    return int64_t(Json(r.body)["events"].get_array().size());
  }

  std::atomic<int> port_{0};
};

TEST_F(CrashTest, KilledAtRandomPointsUnderConcurrentWritersNoAcknowledgedBatchIsLostAndNoneIsHalfStored) {
  const char* env = std::getenv("AFFINITY_CRASH_SEED");
  const uint32_t seed = env ? uint32_t(std::strtoul(env, nullptr, 10)) : uint32_t(std::random_device{}());
  std::printf("crash test seed %u (AFFINITY_CRASH_SEED=%u replays it)\n", seed, seed);
  std::mt19937 rng(seed);
  int64_t expected_events = int64_t(Json(Get(port(), "/admin/stats").body)["events"]);
  int acknowledged = 0, half = 0, lost = 0, unacknowledged_stored = 0;
  for (int round = 0; round < 6; ++round) {
    port_ = port();
    std::vector<Batch> batches;
    std::mutex mu;
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int w = 0; w < 3; ++w) writers.emplace_back([&, w] { Writer(round, w, uint32_t(rng()), &batches, &mu); });
    std::thread op([&] { Operator(round, &stop); });
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 750));
    server_->Kill9();
    stop = true;
    for (auto& t : writers) t.join();
    op.join();
    server_ = std::make_unique<ServerProcess>(dir_ / "data");
    ASSERT_TRUE(server_->running()) << "round " << round << ", seed " << seed << ":\n" << server_->log();
    for (const Batch& b : batches) {
      const int64_t stored = StoredEvents(b.viewer);
      if (stored != 0 && stored != b.size) ++half;
      if (b.acknowledged && stored != b.size) ++lost;
      if (!b.acknowledged && stored == b.size) ++unacknowledged_stored;
      acknowledged += b.acknowledged ? 1 : 0;
      expected_events += stored == b.size ? b.size : 0;
    }
    EXPECT_EQ(int64_t(Json(Get(port(), "/admin/stats").body)["events"]), expected_events)
        << "round " << round << ", seed " << seed;
    EXPECT_EQ(Post(port(), "/affinity/query", R"({"viewer_id":"u1","k":10})").status, 200);
  }
  std::printf("%d batches acknowledged, %d stored without their answer, %d lost, %d stored in part\n", acknowledged,
              unacknowledged_stored, lost, half);
  EXPECT_GT(acknowledged, 0);
  EXPECT_EQ(lost, 0) << "seed " << seed;
  EXPECT_EQ(half, 0) << "seed " << seed;
}

}  // namespace
}  // namespace affinity
