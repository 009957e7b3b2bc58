// The audit chain end to end: `affinity audit keygen` makes a key, a server
// configured with it signs checkpoints, `affinity audit verify`
// accepts the chain beside the running server and after it stops, and names
// the record whose bytes were changed on disk; a key others can read is refused.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <sys/stat.h>

#include <fstream>

#include "integration/server_fixture.h"
#include "store/store.h"

namespace affinity {
namespace {

class AuditChainEndToEndTest : public ServerTest {
 protected:
  // The key pair and a configuration that signs with it every second.
  void MakeKey() {
    auto keygen = RunAffinity({"audit", "keygen", "--out", keys_ / "audit.key"});
    ASSERT_EQ(keygen.exit_code, 0) << keygen.output;
    ASSERT_NE(keygen.output.find(keys_ / "audit.key.pub"), std::string::npos) << keygen.output;
    std::ofstream(dir_ / "affinity.toml") << "[audit]\nsigning_key = \"" << keys_ / "audit.key"
                                          << "\"\ncheckpoint_interval_seconds = 1\n";
  }
  std::vector<std::string> Query(int n) {
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) {
      auto r = Post(port(), "/affinity/query", R"({"viewer_id":"u)" + std::to_string(i + 1) + R"(","k":5})");
      EXPECT_EQ(r.status, 200) << r.body;
      ids.emplace_back(std::string_view(Json(r.body)["request_id"]));
    }
    return ids;
  }
  CommandResult Verify() {
    return RunAffinity({"audit", "verify", "--data", dir_ / "data", "--public-key", keys_ / "audit.key.pub"});
  }
  TempDir keys_;
};

TEST_F(AuditChainEndToEndTest, AServerSignsItsChainAndVerifyNamesARecordChangedOnDisk) {
  MakeKey();
  server_.reset();
  server_ = std::make_unique<ServerProcess>(dir_ / "data", std::vector<std::string>{"--config", dir_ / "affinity.toml"});
  ASSERT_TRUE(server_->running()) << server_->log();
  const std::vector<std::string> ids = Query(12);
  // Beside the running server (a read-only secondary instance).
  // Until the writer's first signed checkpoint (within a second), verify says
  // none is stored yet; after it, the chain verifies while records arrive.
  bool verified = false;
  for (int i = 0; i < 100 && !verified; ++i) {
    CommandResult beside = Verify();
    if (beside.exit_code != 0) {
      ASSERT_NE(beside.output.find("no checkpoint is stored"), std::string::npos) << beside.output;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    verified = beside.output.find("12 records intact") != std::string::npos;  // all written
  }
  EXPECT_TRUE(verified) << "verify beside the running server never saw the 12 records";
  server_->Stop(SIGTERM);  // a last signed checkpoint
  CommandResult ok = Verify();
  ASSERT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_NE(ok.output.find("audit chain intact: entries 1..12, 12 records intact"), std::string::npos) << ok.output;
  EXPECT_NE(ok.output.find("the last at sequence 12"), std::string::npos) << ok.output;

  {  // one byte of one stored record changed, as `ldb put` would
    auto store = *OpenRocksStore(dir_ / "data", OpenMode::kPrimary);
    auto stored = **store->GetStoredAudit(ids[4]);
    stored.second[stored.second.size() / 2] ^= 1;
    Store::AuditWrite w;
    w.written_ms = stored.first;
    w.records = {{ids[4], stored.second}};
    ASSERT_TRUE(store->WriteAudit(w).ok());
  }
  CommandResult bad = Verify();
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_NE(bad.output.find("record sequence 5 (request " + ids[4] + ") was altered"), std::string::npos)
      << bad.output;
}

TEST_F(AuditChainEndToEndTest, AServerRefusesASigningKeyOthersCanRead) {
  MakeKey();
  server_.reset();
  ASSERT_EQ(::chmod((keys_ / "audit.key").c_str(), 0640), 0);
  auto serve = RunAffinity({"serve", "--data", dir_ / "data", "--port", "0", "--config", dir_ / "affinity.toml"}, 30);
  EXPECT_EQ(serve.exit_code, 1) << serve.output;
  EXPECT_NE(serve.output.find("has mode 0640: a signing key must be readable by its owner only"), std::string::npos)
      << serve.output;
}

TEST_F(AuditChainEndToEndTest, VerifyWithoutAKeySaysTheCheckpointsAreUnsigned) {
  Query(3);
  server_->Stop(SIGTERM);
  auto r = RunAffinity({"audit", "verify", "--data", dir_ / "data"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("3 records intact"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("checkpoints unsigned (no audit.signing_key)"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace affinity
