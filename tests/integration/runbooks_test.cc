// The runbooks in docs/runbooks/ run as written: every ```sh block of each page,
// in order, against a real server and data dir (DATA, URL, SRC, WORK set and
// `affinity` on the PATH), must exit 0, and the state it was meant to change
// must have changed.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/strings.h"
#include "integration/server_fixture.h"
#include "models/model_registry.h"
#include "testing/tiny_model.h"

namespace affinity {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> ShBlocks(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> blocks;
  std::string line, block;
  bool inside = false;
  while (std::getline(in, line)) {
    if (!inside && line == "```sh") {
      inside = true;
      block.clear();
    } else if (inside && line == "```") {
      inside = false;
      blocks.push_back(block);
    } else if (inside) {
      block += line + "\n";
    }
  }
  return blocks;
}

class RunbooksTest : public ServerTest {
 protected:
  // Runs every sh block of docs/runbooks/<name>; each must exit 0.
  void RunRunbook(const std::string& name) {
    const std::string page = std::string(AFFINITY_SOURCE_DIR) + "/docs/runbooks/" + name;
    const auto blocks = ShBlocks(page);
    ASSERT_FALSE(blocks.empty()) << page << " has no sh block";
    const fs::path bin = dir_ / "bin", work = dir_ / "work";
    fs::create_directories(bin);
    fs::create_directories(work);
    std::error_code ec;
    fs::create_symlink(fs::absolute(AffinityBin()), bin / "affinity", ec);
    for (size_t i = 0; i < blocks.size(); ++i) {
      const fs::path script = work / (name + "." + std::to_string(i) + ".sh");
      std::ofstream(script) << "set -euo pipefail\n" << blocks[i];
      const std::string cmd = "cd '" + work.string() + "' && PATH='" + bin.string() + "':\"$PATH\" DATA='" +
                              std::string(dir_ / "data") + "' URL='http://127.0.0.1:" + std::to_string(port()) +
                              "' SRC='" + std::string(*world_ / "src") + "' WORK='" + work.string() + "' bash '" +
                              script.string() + "' > '" + script.string() + ".log' 2>&1";
      const int status = std::system(cmd.c_str());
      std::stringstream log;
      log << std::ifstream(script.string() + ".log").rdbuf();
      EXPECT_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 0)
          << name << " block " << i << ":\n" << blocks[i] << "\noutput:\n" << log.str();
    }
  }

  // A small model saved in `dir` (the registry imports it).
  static void SaveTinyModel(int seed, const std::string& dir) {
    auto model = testing::TinyModel(seed);
    ASSERT_NE(model, nullptr);
    ASSERT_TRUE(model->Save(dir).ok());
  }
};

TEST_F(RunbooksTest, ModelRollbackRollsBackTheCanaryAndThenThePromotedModel) {
  const std::string data = dir_ / "data";
  for (int i = 1; i <= 3; ++i) {
    SaveTinyModel(i, dir_ / ("m" + std::to_string(i)));
    ASSERT_EQ(RunAffinity({"model", "import", "--data", data, dir_ / ("m" + std::to_string(i))}).exit_code, 0);
  }
  ASSERT_EQ(RunAffinity({"model", "promote", "--data", data, "m000001", "--force"}).exit_code, 0);
  ASSERT_EQ(RunAffinity({"model", "promote", "--data", data, "m000002", "--force"}).exit_code, 0);
  ASSERT_TRUE(ModelRegistry(data).StartCanary("m000003", CanaryPlan{10, 1500, 0.2, 0.5}).ok());
  // The server starts the canary and loads the promoted model.
  bool started = false;
  for (int i = 0; i < 50 && !started; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    started = Get(port(), "/admin/experiments/canary-m000003").status == 200 &&
              Get(port(), "/admin/models").body.find("\"loaded\":\"m000002\"") != std::string::npos;
  }
  ASSERT_TRUE(started) << Get(port(), "/admin/models").body << "\n" << Get(port(), "/admin/experiments").body << "\n"
                       << server_->log();
  RunRunbook("model-rollback.md");
  auto st = *ModelRegistry(data).Read();
  EXPECT_EQ(st.Find("m000003")->rollout.state, ModelState::kRolledBack);
  EXPECT_NE(st.Find("m000003")->rollout.note.find("rolled back by hand"), std::string::npos)
      << st.Find("m000003")->rollout.note;
  EXPECT_EQ(st.current, "m000001");
  bool swapped = false;
  for (int i = 0; i < 50 && !swapped; ++i) {
    swapped = Get(port(), "/admin/models").body.find("\"loaded\":\"m000001\"") != std::string::npos;
    if (!swapped) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_TRUE(swapped) << Get(port(), "/admin/models").body;
}

TEST_F(RunbooksTest, DamagedFilesRunsAsWrittenAndEndsBothRefusals) {
  const std::string data = dir_ / "data";
  for (int i = 1; i <= 2; ++i) {
    SaveTinyModel(i, dir_ / ("m" + std::to_string(i)));
    ASSERT_EQ(RunAffinity({"model", "import", "--data", data, dir_ / ("m" + std::to_string(i))}).exit_code, 0);
  }
  ASSERT_EQ(RunAffinity({"model", "promote", "--data", data, "m000001", "--force"}).exit_code, 0);
  bool loaded = false;
  for (int i = 0; i < 50 && !loaded; ++i) {
    loaded = Get(port(), "/admin/models").body.find("\"loaded\":\"m000001\"") != std::string::npos;
    if (!loaded) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_TRUE(loaded) << Get(port(), "/admin/models").body;
  // m000002 promoted with one bit of a threshold flipped ('0' -> '8' or '1' -> '9').
  std::string model = *ReadFile(data + "/models/m000002/model.json");
  const size_t at = model.find_first_of("01", model.find("split_conditions"));
  ASSERT_NE(at, std::string::npos);
  model[at] = char(model[at] ^ 0x08);
  ASSERT_TRUE(WriteFileAtomic(data + "/models/m000002/model.json", model));
  ASSERT_EQ(RunAffinity({"model", "promote", "--data", data, "m000002", "--force"}).exit_code, 0);
  // A snapshot version published with one bit of arrays.bin flipped.
  fs::copy(data + "/snapshots/v000001", data + "/snapshots/v000002", fs::copy_options::recursive);
  std::string arrays = *ReadFile(data + "/snapshots/v000002/arrays.bin");
  arrays[arrays.size() / 2] = char(arrays[arrays.size() / 2] ^ 0x10);
  ASSERT_TRUE(WriteFileAtomic(data + "/snapshots/v000002/arrays.bin", arrays));
  ASSERT_TRUE(WriteFileAtomic(data + "/snapshots/CURRENT", "v000002\n"));
  std::string ready;
  for (int i = 0; i < 75; ++i) {
    ready = Get(port(), "/readyz").body;
    if (ready.find("\"degraded\":[\"snapshot\",\"model\"]") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_NE(ready.find("\"degraded\":[\"snapshot\",\"model\"]"), std::string::npos) << ready;
  RunRunbook("damaged-files.md");
  ready = Get(port(), "/readyz").body;
  EXPECT_NE(ready.find("\"degraded\":[]"), std::string::npos) << ready;
  EXPECT_EQ(std::string(std::string_view(Json(ready)["snapshot"])), "v000003") << ready;
  EXPECT_EQ(ModelRegistry(data).Read()->current, "m000001");
  EXPECT_FALSE(fs::exists(data + "/snapshots/v000002")) << "the damaged version was not removed";
}

TEST_F(RunbooksTest, RestartRunsAsWrittenAndLeavesACheckpointCoveringTheLog) {
  ASSERT_EQ(Post(port(), "/affinity/feedback", R"({"events":[{"viewer_id":"u2","entity_id":"i3","action":"click"}]})")
                .status,
            202);
  RunRunbook("restart.md");
  auto stats = Json(Get(port(), "/admin/stats").body);
  EXPECT_EQ(int64_t(stats["live_state"]["checkpoint"]["events_since"]), 0);
  EXPECT_EQ(int64_t(stats["live_state"]["checkpoint"]["last"]["offset"]), int64_t(stats["events"]));
  EXPECT_TRUE(fs::exists(dir_ / "data/state/live.ckpt"));
}

TEST_F(RunbooksTest, BiasInvestigationRunsAsWritten) { RunRunbook("bias-investigation.md"); }

TEST_F(RunbooksTest, FreshnessIncidentRunsAsWrittenAndRefreshesTheSnapshot) {
  const std::string before{std::string_view(Json(Get(port(), "/admin/stats").body)["snapshot"])};
  RunRunbook("freshness-incident.md");
  std::string after = before;
  for (int i = 0; i < 150 && after == before; ++i) {  // up to 30 s: slow builds batch slowly
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    after = std::string(std::string_view(Json(Get(port(), "/admin/stats").body)["snapshot"]));
  }
  EXPECT_NE(after, before);
}

TEST_F(RunbooksTest, AuditVerifyRunsAsWrittenOverTheServedRecords) {
  for (int i = 1; i <= 3; ++i)
    ASSERT_EQ(Post(port(), "/affinity/query", R"({"viewer_id":"u)" + std::to_string(i) + R"(","k":3})").status, 200);
  for (int i = 0; i < 50; ++i) {  // the records reach the store off the request path
    auto r = RunAffinity({"audit", "verify", "--data", dir_ / "data"});
    if (r.output.find("3 records intact") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  RunRunbook("audit-verify.md");
  std::ifstream in(dir_ / "work/verify.txt");
  std::stringstream verified;
  verified << in.rdbuf();
  EXPECT_NE(verified.str().find("audit chain intact: entries 1..3, 3 records intact"), std::string::npos)
      << verified.str();
}

TEST_F(RunbooksTest, DriftAlertRunsAsWritten) { RunRunbook("drift-alert.md"); }

TEST_F(RunbooksTest, ConnectionFloodRunsAsWritten) { RunRunbook("connection-flood.md"); }

TEST_F(RunbooksTest, FeatureBackfillRunsAsWrittenAndPublishesANewVersion) {
  const std::string before{std::string_view(Json(Get(port(), "/admin/features/popularity/i1").body)["provenance"]["snapshot"])};
  RunRunbook("feature-backfill.md");
  const std::string after{std::string_view(Json(Get(port(), "/admin/features/popularity/i1").body)["provenance"]["snapshot"])};
  EXPECT_NE(after, before) << "the record's provenance still names the old snapshot";
  EXPECT_NE(Get(port(), "/admin/features/popularity/i1").body.find("backfill of popularity"), std::string::npos);
}

}  // namespace
}  // namespace affinity
