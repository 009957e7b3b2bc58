// Operating the service, end to end: the built-in batch schedule and the
// batch lock that keeps two batches from running on one data dir.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "integration/server_fixture.h"

namespace affinity {
namespace {

using OperationsTest = ServerTest;

TEST_F(OperationsTest, ServeBatchEveryRunsTheBatchOnItsScheduleAndReportsEachRun) {
  server_.reset();
  server_ = std::make_unique<ServerProcess>(dir_ / "data", std::vector<std::string>{"--batch-every", "1s"});
  ASSERT_TRUE(server_->running()) << server_->log();
  const std::string first{std::string_view(Json(Get(port(), "/admin/stats").body)["snapshot"])};
  std::string snapshot = first, outcome;
  int64_t runs = 0;
  for (int i = 0; i < 100 && (runs < 2 || snapshot == first); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto stats = Json(Get(port(), "/admin/stats").body);
    snapshot = std::string(std::string_view(stats["snapshot"]));
    runs = int64_t(stats["batch_schedule"]["runs"]);
    outcome = std::string(std::string_view(stats["batch_schedule"]["last_outcome"]));
  }
  EXPECT_GE(runs, 2);
  EXPECT_EQ(outcome, "ok");
  EXPECT_NE(snapshot, first) << "the server swapped in no snapshot of the scheduled batch";
  auto stats = Json(Get(port(), "/admin/stats").body);
  EXPECT_EQ(double(stats["batch_schedule"]["every_seconds"]), 1.0);
  EXPECT_GT(int64_t(stats["batch_schedule"]["next_run_ms"]), 0);
  EXPECT_GT(double(stats["batch_schedule"]["last_duration_seconds"]), 0.0);
  const std::string metrics = Get(port(), "/metrics").body;
  EXPECT_NE(metrics.find("affinity_batch_runs{outcome=\"ok\"}"), std::string::npos);
  EXPECT_NE(metrics.find("affinity_batch_next_run_timestamp_seconds"), std::string::npos);
}

TEST_F(OperationsTest, ABadScheduleIsRefusedWithTheReason) {
  auto r = RunAffinity({"serve", "--data", dir_ / "data", "--port", "0", "--batch-every", "hourly"}, 20);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("--batch-every: 'hourly' is not a duration"), std::string::npos) << r.output;
}

TEST_F(OperationsTest, ABatchDoesNothingWhileAnotherRunsOnTheSameDataDir) {
  const std::string lock = dir_ / "data/batch.lock";
  const int fd = ::open(lock.c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);  // as a running batch holds it
  auto r = RunAffinity({"batch", "--data", dir_ / "data"}, 60);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("another `affinity batch` is running"), std::string::npos) << r.output;
  ::close(fd);
  r = RunAffinity({"batch", "--data", dir_ / "data"}, 120);
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

}  // namespace
}  // namespace affinity
