// A full disk, end to end: the server over a data dir on a real size-limited
// volume (a tmpfs mounted for the test; skipped with a message where the test
// may not mount one), filled by another file. Writes answer 507 with
// Retry-After and nothing half-stored, queries keep answering, /readyz says
// what is degraded, the process never ends, writes flow again within seconds
// of space returning, every acknowledged event survives a restart, and a
// start on a full volume comes up read-only and says so.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <simdjson.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "testing/http_client.h"
#include "testing/process.h"
#include "testing/temp_dir.h"

namespace affinity {
namespace {

using namespace affinity::testing;

constexpr uint64_t kVolumeBytes = 64ull << 20;

class DiskFullTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    world_ = new TempDir();
    auto gen = RunAffinity({"generate", "--out", *world_ / "src", "--users", "200", "--creators", "10", "--items",
                            "400", "--events", "5000", "--seed", "5"});
    ASSERT_EQ(gen.exit_code, 0) << gen.output;
  }
  static void TearDownTestSuite() { delete world_; }

  void SetUp() override {
    volume_ = dir_ / "volume";
    std::filesystem::create_directories(volume_);
    if (::mount("tmpfs", volume_.c_str(), "tmpfs", 0, ("size=" + std::to_string(kVolumeBytes)).c_str()) != 0)
      GTEST_SKIP() << "cannot mount a " << (kVolumeBytes >> 20) << " MiB tmpfs volume here (" << std::strerror(errno)
                   << "): the disk-full tests need root (CAP_SYS_ADMIN)";
    mounted_ = true;
    data_ = volume_ + "/data";
    auto imp = RunAffinity({"import", "--data", data_, "--format", "native", *world_ / "src"});
    ASSERT_EQ(imp.exit_code, 0) << imp.output;
    auto batch = RunAffinity({"batch", "--data", data_});
    ASSERT_EQ(batch.exit_code, 0) << batch.output;
  }
  void TearDown() override {
    server_.reset();
    if (mounted_) ::umount2(volume_.c_str(), MNT_DETACH);
  }

  void Serve(int min_free_mb) {
    std::ofstream(dir_ / "storage.toml") << "[storage]\nmin_free_mb = " << min_free_mb << "\npoll_ms = 100\n";
    server_ = std::make_unique<ServerProcess>(data_, std::vector<std::string>{"--config", dir_ / "storage.toml"});
    ASSERT_TRUE(server_->running()) << server_->log();
  }
  uint64_t FreeBytes() {
    struct statvfs v;
    return ::statvfs(volume_.c_str(), &v) == 0 ? uint64_t(v.f_bavail) * v.f_frsize : 0;
  }
  // Fills the volume with another file until `leave` bytes are free.
  void Fill(uint64_t leave) {
    const uint64_t free = FreeBytes();
    ASSERT_GT(free, leave);
    const int fd = ::open((volume_ + "/filler").c_str(), O_CREAT | O_WRONLY | O_APPEND, 0644);
    ASSERT_GE(fd, 0);
    std::string chunk(1 << 20, 'f');
    for (uint64_t left = free - leave; left > 0;) {
      const size_t n = size_t(std::min<uint64_t>(left, chunk.size()));
      if (::write(fd, chunk.data(), n) <= 0) break;
      left -= n;
    }
    ::close(fd);
  }
  void Unfill() { std::filesystem::remove(volume_ + "/filler"); }

  HttpResult Feedback(int i) {
    std::string body = "{\"events\":[";
    for (int e = 0; e < 50; ++e)
      body += std::string(e ? "," : "") + "{\"viewer_id\":\"u" + std::to_string((i * 7 + e) % 200) +
              "\",\"entity_id\":\"i" + std::to_string((i + e) % 400) +
              "\",\"action\":\"click\",\"context\":{\"note\":\"" + std::string(400, 'n') + "\"}}";
    return Post(server_->port(), "/affinity/feedback", body + "]}");
  }
  int QueryStatus() { return Post(server_->port(), "/affinity/query", R"({"viewer_id":"u1","k":5})").status; }
  std::string Ready() { return Get(server_->port(), "/readyz").body; }
  uint64_t StoredEvents() {
    simdjson::dom::parser p;
    return uint64_t(p.parse(Get(server_->port(), "/admin/stats").body)["events"].get_uint64().value_unsafe());
  }
  // Seconds until a write is accepted again (-1: not within `limit`).
  double SecondsUntilWritesFlow(double limit) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0;; ++i) {
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (Feedback(10'000 + i).status == 202) return s;
      if (s > limit) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  inline static TempDir* world_ = nullptr;
  TempDir dir_;
  std::string volume_, data_;
  bool mounted_ = false;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(DiskFullTest, BelowTheFloorWritesAre507WhileQueriesAnswerAndTheyFlowAgainOnceSpaceReturns) {
  ASSERT_NO_FATAL_FAILURE(Serve(16));
  ASSERT_EQ(Feedback(0).status, 202);
  ASSERT_NO_FATAL_FAILURE(Fill(8ull << 20));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a poll or two
  const HttpResult refused = Feedback(1);
  EXPECT_EQ(refused.status, 507) << refused.body;
  EXPECT_NE(refused.body.find("insufficient_storage"), std::string::npos) << refused.body;
  EXPECT_NE(refused.body.find(volume_), std::string::npos) << "names the volume: " << refused.body;
  EXPECT_NE(refused.body.find("storage.min_free_mb"), std::string::npos) << refused.body;
  EXPECT_EQ(QueryStatus(), 200);
  EXPECT_NE(Ready().find("\"degraded\":[\"storage\"]"), std::string::npos) << Ready();
  Unfill();
  const double seconds = SecondsUntilWritesFlow(5.0);
  RecordProperty("seconds_until_writes_flow", std::to_string(seconds));
  EXPECT_GE(seconds, 0) << "writes still refused 5 s after space returned: " << Ready();
  EXPECT_NE(Ready().find("\"degraded\":[]"), std::string::npos) << Ready();
}

TEST_F(DiskFullTest, AStoreThatMeetsAFullVolumeAnswers507NeverAbortsAndLosesNothingAcknowledged) {
  ASSERT_NO_FATAL_FAILURE(Serve(0));  // no floor: the store itself meets the full volume
  const uint64_t before = StoredEvents();
  ASSERT_NO_FATAL_FAILURE(Fill(3ull << 20));
  uint64_t acked = 0;
  int refused = 0;
  for (int i = 0; i < 400 && refused < 5; ++i) {
    const HttpResult r = Feedback(i);
    if (r.status == 202) acked += 50;
    else if (r.status == 507) ++refused;
    else ADD_FAILURE() << "feedback " << i << ": " << r.status << " " << r.body << "\n" << server_->log();
  }
  ASSERT_GT(refused, 0) << "the volume never filled";
  EXPECT_EQ(QueryStatus(), 200) << server_->log();
  EXPECT_NE(Ready().find("\"degraded\":[\"storage\"]"), std::string::npos) << Ready();
  Unfill();
  const double seconds = SecondsUntilWritesFlow(5.0);
  RecordProperty("seconds_until_writes_flow", std::to_string(seconds));
  EXPECT_GE(seconds, 0) << "writes still refused 5 s after space returned: " << Ready();
  if (seconds >= 0) acked += 50;
  // A restart holds every acknowledged event.
  server_.reset();
  ASSERT_NO_FATAL_FAILURE(Serve(0));
  EXPECT_EQ(StoredEvents(), before + acked) << server_->log();
  RecordProperty("acknowledged_events", std::to_string(acked));
}

TEST_F(DiskFullTest, AStartOnAFullVolumeServesReadOnlyAndSaysSo) {
  ASSERT_NO_FATAL_FAILURE(Fill(0));
  ASSERT_NO_FATAL_FAILURE(Serve(0));
  EXPECT_EQ(QueryStatus(), 200) << server_->log();
  const std::string ready = Ready();
  EXPECT_NE(ready.find("\"read_only\":true"), std::string::npos) << ready << "\n" << server_->log();
  const HttpResult refused = Feedback(0);
  EXPECT_EQ(refused.status, 507) << refused.body;
  EXPECT_NE(refused.body.find("read-only"), std::string::npos) << refused.body;
  EXPECT_NE(server_->log().find("serving read-only"), std::string::npos) << server_->log();
}

}  // namespace
}  // namespace affinity
