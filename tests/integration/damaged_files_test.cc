// Damaged files end to end: a real server over a data dir whose newest
// snapshot or promoted model was damaged on disk by one bit. It refuses the
// damaged file, serves the newest version that verifies, and says so in
// /readyz (still 200: queries answer), /admin/stats, /metrics and the
// operator page; a batch that publishes a damaged version while it serves
// leaves the served one in place, and the next good batch ends the refusal.
#include <gtest/gtest.h>
#include <simdjson.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "base/strings.h"
#include "testing/http_client.h"
#include "testing/process.h"
#include "testing/temp_dir.h"
#include "testing/tiny_model.h"

namespace affinity {
namespace {

using namespace affinity::testing;
namespace fs = std::filesystem;

void FlipBit(const std::string& path, size_t at, int bit) {
  std::string bytes = *ReadFile(path);
  ASSERT_LT(at, bytes.size());
  bytes[at] = char(bytes[at] ^ (1 << bit));
  ASSERT_TRUE(WriteFileAtomic(path, bytes));
}

// One bit of a threshold in model.json ('0' -> '8' or '1' -> '9'): the file
// still parses, and its scores change.
void FlipAThreshold(const std::string& path) {
  std::string bytes = *ReadFile(path);
  const size_t at = bytes.find_first_of("01", bytes.find("split_conditions"));
  ASSERT_NE(at, std::string::npos);
  bytes[at] = char(bytes[at] ^ 0x08);
  ASSERT_TRUE(WriteFileAtomic(path, bytes));
}

class DamagedFilesTest : public ::testing::Test {
 protected:
  // A small world with two snapshot versions and two models, m000002 current.
  static void SetUpTestSuite() {
    world_ = new TempDir();
    const std::string data = *world_ / "data";
    auto gen = RunAffinity({"generate", "--out", *world_ / "src", "--users", "300", "--creators", "15", "--items",
                            "600", "--events", "8000", "--seed", "7"});
    ASSERT_EQ(gen.exit_code, 0) << gen.output;
    auto imp = RunAffinity({"import", "--data", data, "--format", "native", *world_ / "src"});
    ASSERT_EQ(imp.exit_code, 0) << imp.output;
    for (int i = 0; i < 2; ++i) {
      auto batch = RunAffinity({"batch", "--data", data});
      ASSERT_EQ(batch.exit_code, 0) << batch.output;
    }
    for (int i = 1; i <= 2; ++i) {
      const std::string saved = *world_ / ("m" + std::to_string(i));
      ASSERT_TRUE(TinyModel(i)->Save(saved).ok());
      ASSERT_EQ(RunAffinity({"model", "import", "--data", data, saved}).exit_code, 0);
      ASSERT_EQ(RunAffinity({"model", "promote", "--data", data, "m00000" + std::to_string(i), "--force"}).exit_code, 0);
    }
  }
  static void TearDownTestSuite() { delete world_; }

  void SetUp() override {
    fs::copy(*world_ / "data", dir_ / "data", fs::copy_options::recursive);
    data_ = dir_ / "data";
  }
  void Serve() {
    server_ = std::make_unique<ServerProcess>(data_);
    ASSERT_TRUE(server_->running()) << server_->log();
  }
  simdjson::dom::element Json(const std::string& body) {
    simdjson::dom::element e;
    EXPECT_FALSE(parser_.parse(body).get(e)) << body;
    return e;
  }
  std::string Str(simdjson::dom::element e) {
    std::string_view s;
    return e.get(s) ? std::string("<not a string>") : std::string(s);
  }
  std::vector<std::string> Degraded(const std::string& readyz) {
    std::vector<std::string> out;
    for (auto d : Json(readyz)["degraded"].get_array()) out.push_back(Str(d));
    return out;
  }
  // Polls /readyz until `pred` holds of its body (15 s at most); the last body.
  template <class Pred>
  std::string WaitForReady(Pred pred) {
    std::string body;
    for (int i = 0; i < 75; ++i) {
      body = Get(server_->port(), "/readyz").body;
      if (pred(body)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return body;
  }
  // Each viewer's results as "entity:score" lists, with the model that scored them.
  std::map<std::string, std::string> Scores(int port) {
    std::map<std::string, std::string> out;
    for (int v = 0; v < 20; ++v) {
      const std::string viewer = "u" + std::to_string(v);
      auto r = Post(port, "/affinity/query", R"({"viewer_id":")" + viewer + R"(","k":10,"explain":false})");
      EXPECT_EQ(r.status, 200) << r.body;
      auto doc = Json(r.body);
      std::string line = Str(doc["model_version"]) + ":";
      for (auto res : doc["results"].get_array())
        line += " " + Str(res["entity_id"]) + "=" + std::to_string(double(res["score"]));
      out[viewer] = line;
    }
    return out;
  }
  std::string Metric(const std::string& line_start) {
    const std::string text = Get(server_->port(), "/metrics").body;
    const size_t at = text.find("\n" + line_start);
    return at == std::string::npos ? "<absent>" : text.substr(at + 1, text.find('\n', at + 1) - at - 1);
  }

  inline static TempDir* world_ = nullptr;
  TempDir dir_;
  std::string data_;
  std::unique_ptr<ServerProcess> server_;
  simdjson::dom::parser parser_;
};

TEST_F(DamagedFilesTest, AnUndamagedDataDirIsReadyWithNothingRefused) {
  Serve();
  auto r = Get(server_->port(), "/readyz");
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(Degraded(r.body).empty()) << r.body;
  EXPECT_EQ(Json(r.body)["refused"].get_array().size(), 0u) << r.body;
  EXPECT_EQ(Metric("affinity_refused_files{kind=\"snapshot\"}"), "affinity_refused_files{kind=\"snapshot\"} 0");
  EXPECT_EQ(Metric("affinity_refused_files{kind=\"model\"}"), "affinity_refused_files{kind=\"model\"} 0");
}

TEST_F(DamagedFilesTest, OneFlippedBitInTheNewestArraysFileServesTheOlderVersionAndSaysWhy) {
  const std::string arrays = data_ + "/snapshots/v000002/arrays.bin";
  FlipBit(arrays, fs::file_size(arrays) / 2, 4);
  Serve();
  auto r = Get(server_->port(), "/readyz");
  ASSERT_EQ(r.status, 200) << r.body;
  auto ready = Json(r.body);
  EXPECT_EQ(Str(ready["snapshot"]), "v000001");
  EXPECT_EQ(Degraded(r.body), std::vector<std::string>{"snapshot"}) << r.body;
  auto refused = ready["refused"].get_array();
  ASSERT_EQ(refused.size(), 1u) << r.body;
  EXPECT_EQ(Str(refused.at(0)["kind"]), "snapshot");
  EXPECT_EQ(Str(refused.at(0)["version"]), "v000002");
  EXPECT_EQ(Str(refused.at(0)["serving"]), "v000001");
  const std::string reason = Str(refused.at(0)["reason"]);
  EXPECT_NE(reason.find("arrays.bin"), std::string::npos) << reason;
  EXPECT_NE(reason.find("failed its checksum"), std::string::npos) << reason;
  // The same in /admin/stats; the age is the served version's, not zero.
  auto stats = Json(Get(server_->port(), "/admin/stats").body);
  EXPECT_EQ(Str(stats["snapshot"]), "v000001");
  EXPECT_EQ(Str(stats["refused"].at(0)["version"]), "v000002");
  EXPECT_GT(double(stats["snapshot_age_seconds"]), 0.0);
  EXPECT_EQ(Metric("affinity_refused_files{kind=\"snapshot\"}"), "affinity_refused_files{kind=\"snapshot\"} 1");
  EXPECT_NE(Metric("affinity_snapshot_age_seconds"), "affinity_snapshot_age_seconds 0");
  EXPECT_NE(server_->log().find("snapshot v000002 refused"), std::string::npos) << server_->log();
  // Queries answer from the older version's neighbours and embeddings.
  auto q = Post(server_->port(), "/affinity/query", R"({"viewer_id":"u1","k":10})");
  ASSERT_EQ(q.status, 200) << q.body;
  EXPECT_EQ(Json(q.body)["results"].get_array().size(), 10u);
  EXPECT_NE(q.body.find("\"ann\""), std::string::npos) << "no result from the ANN index: " << q.body.substr(0, 600);
}

TEST_F(DamagedFilesTest, CurrentNamingAMissingVersionServesTheNewestKeptOne) {
  ASSERT_TRUE(WriteFileAtomic(data_ + "/snapshots/CURRENT", "v000007\n"));
  Serve();
  auto r = Get(server_->port(), "/readyz");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Str(Json(r.body)["snapshot"]), "v000002");
  EXPECT_NE(r.body.find("CURRENT names v000007, which is not on disk"), std::string::npos) << r.body;
}

TEST_F(DamagedFilesTest, ADamagedVersionPublishedWhileServingIsRefusedAndTheNextGoodBatchEndsIt) {
  Serve();
  ASSERT_EQ(Str(Json(Get(server_->port(), "/readyz").body)["snapshot"]), "v000002");
  // A version published damaged (a bit flipped between write and load).
  fs::copy(data_ + "/snapshots/v000002", data_ + "/snapshots/v000003", fs::copy_options::recursive);
  FlipBit(data_ + "/snapshots/v000003/ann_item.hnsw", fs::file_size(data_ + "/snapshots/v000003/ann_item.hnsw") / 2, 2);
  ASSERT_TRUE(WriteFileAtomic(data_ + "/snapshots/CURRENT", "v000003\n"));
  std::string body = WaitForReady([](const std::string& b) { return b.find("\"snapshot\"]") != std::string::npos; });
  EXPECT_EQ(Degraded(body), std::vector<std::string>{"snapshot"}) << body;
  EXPECT_EQ(Str(Json(body)["snapshot"]), "v000002");
  EXPECT_NE(body.find("ann_item.hnsw failed its checksum"), std::string::npos) << body;
  EXPECT_EQ(Post(server_->port(), "/affinity/query", R"({"viewer_id":"u2","k":5})").status, 200);
  // `affinity verify` names it too, and exits non-zero.
  auto verify = RunAffinity({"verify", "--data", data_});
  EXPECT_EQ(verify.exit_code, 1) << verify.output;
  EXPECT_NE(verify.output.find("snapshot v000003 (CURRENT)  REFUSED"), std::string::npos) << verify.output;
  EXPECT_NE(verify.output.find("snapshot v000002  ok"), std::string::npos) << verify.output;
  // The runbook's remedy: run the batch again.
  auto batch = RunAffinity({"batch", "--data", data_});
  ASSERT_EQ(batch.exit_code, 0) << batch.output;
  body = WaitForReady([](const std::string& b) { return b.find("\"degraded\":[]") != std::string::npos; });
  EXPECT_EQ(Str(Json(body)["snapshot"]), "v000004") << body;
  EXPECT_EQ(Json(body)["refused"].get_array().size(), 0u) << body;
  EXPECT_EQ(Metric("affinity_refused_files{kind=\"snapshot\"}"), "affinity_refused_files{kind=\"snapshot\"} 0");
}

TEST_F(DamagedFilesTest, ADamagedPromotedModelIsRefusedAndScoresComeFromTheVerifiedPreviousModel) {
  // The reference: the same data dir with m000001 current (m000002 rolled back).
  std::map<std::string, std::string> reference;
  {
    TempDir ref;
    fs::copy(data_, ref / "data", fs::copy_options::recursive);
    ASSERT_EQ(RunAffinity({"model", "rollback", "--data", ref / "data"}).exit_code, 0);
    ServerProcess m1(ref / "data");
    ASSERT_TRUE(m1.running()) << m1.log();
    reference = Scores(m1.port());
  }
  ASSERT_NE(reference["u1"].find("lambdamart-m000001"), std::string::npos) << reference["u1"];
  const std::string model = data_ + "/models/m000002/model.json";
  FlipAThreshold(model);
  Serve();
  auto r = Get(server_->port(), "/readyz");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Degraded(r.body), std::vector<std::string>{"model"}) << r.body;
  auto refused = Json(r.body)["refused"].get_array();
  ASSERT_EQ(refused.size(), 1u) << r.body;
  EXPECT_EQ(Str(refused.at(0)["version"]), "m000002");
  EXPECT_EQ(Str(refused.at(0)["serving"]), "m000001");
  EXPECT_NE(Str(refused.at(0)["reason"]).find("model.json does not match its checksum"), std::string::npos) << r.body;
  EXPECT_EQ(Metric("affinity_refused_files{kind=\"model\"}"), "affinity_refused_files{kind=\"model\"} 1");
  EXPECT_NE(Get(server_->port(), "/admin/models").body.find("\"loaded\":\"m000001\""), std::string::npos);
  EXPECT_EQ(Str(Json(Get(server_->port(), "/admin/stats").body)["refused"].at(0)["version"]), "m000002");
  // Every score is the verified model's, to the last digit.
  const auto served = Scores(server_->port());
  for (const auto& [viewer, line] : reference) EXPECT_EQ(served.at(viewer), line) << viewer;
}

// Headless Chromium's DOM of `url` after its scripts ran (the operator page test's way).
std::string DumpDom(const std::string& profile, const std::string& url, const std::string& out) {
  const std::string cmd = "timeout 120 chromium --headless --no-sandbox --disable-gpu --user-data-dir='" + profile +
                          "' --virtual-time-budget=8000 --dump-dom '" + url + "' > '" + out + "' 2>/dev/null";
  const int status = std::system(cmd.c_str());
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return "<chromium failed>";
  std::stringstream ss;
  ss << std::ifstream(out).rdbuf();
  return ss.str();
}

TEST_F(DamagedFilesTest, TheOperatorPageSaysWhatWasRefusedAndWhatServes) {
  ASSERT_EQ(std::system("command -v chromium > /dev/null"), 0) << "chromium is not installed: run `make deps`";
  const std::string arrays = data_ + "/snapshots/v000002/arrays.bin";
  FlipBit(arrays, fs::file_size(arrays) / 2, 6);
  Serve();
  const std::string dom = DumpDom(dir_ / "profile", "http://127.0.0.1:" + std::to_string(server_->port()) + "/admin/ui",
                                  dir_ / "dom.html");
  EXPECT_NE(dom.find("id=\"health\" class=\"warn\">degraded: snapshot<"), std::string::npos) << dom.substr(0, 3000);
  EXPECT_NE(dom.find("refused snapshot v000002: "), std::string::npos) << dom.substr(0, 3000);
  EXPECT_NE(dom.find("(serving v000001 instead)"), std::string::npos);
}

}  // namespace
}  // namespace affinity
