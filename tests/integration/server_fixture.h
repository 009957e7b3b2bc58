// The end-to-end fixture: one small world generated, imported and batched once
// per suite, and a server on an ephemeral port over a private copy per test.
#pragma once

#include <gtest/gtest.h>
#include <simdjson.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "testing/http_client.h"
#include "testing/process.h"
#include "testing/temp_dir.h"

namespace affinity {

using namespace affinity::testing;

// One small world, generated, imported and batched once for the whole suite.
class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    world_ = new TempDir();
    auto gen = RunAffinity({"generate", "--out", *world_ / "src", "--users", "800", "--creators", "40", "--items",
                            "1500", "--events", "40000", "--seed", "11"});
    ASSERT_EQ(gen.exit_code, 0) << gen.output;
    auto imp = RunAffinity({"import", "--data", *world_ / "data", "--format", "native", *world_ / "src"});
    ASSERT_EQ(imp.exit_code, 0) << imp.output;
    auto batch = RunAffinity({"batch", "--data", *world_ / "data"});
    ASSERT_EQ(batch.exit_code, 0) << batch.output;
    ASSERT_NE(batch.output.find(" sessions "), std::string::npos) << batch.output;  // timed events: built
  }
  static void TearDownTestSuite() { delete world_; }

  void SetUp() override {
    // Each test serves its own copy so that writes do not leak between tests.
    std::filesystem::copy(*world_ / "data", dir_ / "data", std::filesystem::copy_options::recursive);
    server_ = std::make_unique<ServerProcess>(dir_ / "data");
    ASSERT_TRUE(server_->running()) << server_->log();
  }

  simdjson::dom::element Json(const std::string& body) {
    simdjson::dom::element e;
    auto err = parser_.parse(body).get(e);
    EXPECT_FALSE(err) << body;
    return e;
  }
  std::vector<std::string> Ids(const std::string& body) {
    std::vector<std::string> ids;
    for (auto r : Json(body)["results"].get_array()) ids.emplace_back(std::string_view(r["entity_id"]));
    return ids;
  }
  std::string ErrorCode(const std::string& body) {
    std::string_view code;
    if (Json(body)["error"]["code"].get(code)) return "<no error code in: " + body.substr(0, 200) + ">";
    return std::string(code);
  }
  int port() const { return server_->port(); }

  inline static TempDir* world_ = nullptr;
  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  simdjson::dom::parser parser_;
};

}  // namespace affinity
