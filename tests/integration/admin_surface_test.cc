// End to end: what a server says about itself — the keys of /admin/stats and
// /readyz and the series of /metrics — against golden lists kept beside this
// test (tests/integration/golden/). Every component a server can hold runs: a
// learned ranker with a drift reference, an experiment, the batch schedule,
// the checkpointer, the storage guard and the connection budget.
// AFFINITY_UPDATE_GOLDEN=1 rewrites the lists from what the server says.
#include <cstdlib>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "base/strings.h"
#include "integration/server_fixture.h"
#include "ranking/drift.h"
#include "ranking/ranker_inputs.h"
#include "testing/tiny_model.h"

namespace affinity {
namespace {

using namespace affinity::testing;

// Every key path of a JSON document ("a.b", arrays as "a[]"), sorted.
void KeyPaths(simdjson::dom::element e, const std::string& at, std::set<std::string>* out) {
  if (e.is_object()) {
    for (auto field : e.get_object()) {
      const std::string path = (at.empty() ? "" : at + ".") + std::string(field.key);
      out->insert(path);
      KeyPaths(field.value, path, out);
    }
  } else if (e.is_array()) {
    for (auto item : e.get_array()) KeyPaths(item, at + "[]", out);
  }
}

// Every series of a Prometheus text page without its value, and every HELP and
// TYPE line, sorted.
std::set<std::string> Series(const std::string& page) {
  std::set<std::string> out;
  std::istringstream in(page);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line[0] == '#') {
      out.insert(line);
      continue;
    }
    out.insert(line.substr(0, line.rfind(' ')));
  }
  return out;
}

std::string Joined(const std::set<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

class AdminSurfaceTest : public ServerTest {
 protected:
  // The golden list `name` against `now`: equal, or each line that differs.
  void ExpectGolden(const std::string& name, const std::set<std::string>& now) {
    const std::string path = std::string(AFFINITY_SOURCE_DIR) + "/tests/integration/golden/" + name;
    if (const char* update = std::getenv("AFFINITY_UPDATE_GOLDEN"); update && std::string(update) == "1") {
      ASSERT_TRUE(WriteFileAtomic(path, Joined(now))) << path;
      return;
    }
    const std::optional<std::string> text = ReadFile(path);
    ASSERT_TRUE(text.has_value()) << "no golden list at " << path;
    std::set<std::string> golden;
    std::istringstream in(*text);
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) golden.insert(line);
    std::string missing, extra;
    for (const auto& l : golden)
      if (!now.count(l)) missing += "  - " + l + "\n";
    for (const auto& l : now)
      if (!golden.count(l)) extra += "  + " + l + "\n";
    EXPECT_TRUE(missing.empty() && extra.empty())
        << name << " differs from its golden list (- no longer said, + new):\n" << missing << extra;
  }

  // A small model whose drift reference names two inputs, imported and made current.
  void InstallModelWithDriftReference() {
    auto model = TinyModel(3);
    ASSERT_NE(model, nullptr);
    std::mt19937 rng{5};
    std::uniform_real_distribution<float> u(0, 1);
    std::vector<float> inputs(200 * kNumRankInputs), scores(200);
    for (float& v : inputs) v = u(rng);
    for (float& v : scores) v = u(rng);
    std::vector<std::string> names;
    for (int j = 0; j < kNumRankInputs; ++j) names.push_back("input" + std::to_string(j));
    model->SetDriftReference(
        DriftReference::Build(inputs.data(), kNumRankInputs, scores.data(), 200, {0, 3}, names));
    ASSERT_TRUE(model->Save(dir_ / "m1").ok());
    const std::string data = dir_ / "data";
    ASSERT_EQ(RunAffinity({"model", "import", "--data", data, dir_ / "m1"}).exit_code, 0);
    ASSERT_EQ(RunAffinity({"model", "promote", "--data", data, "m000001", "--force"}).exit_code, 0);
  }
};

TEST_F(AdminSurfaceTest, StatsKeysAndMetricsSeriesMatchTheGoldenLists) {
  server_.reset();
  InstallModelWithDriftReference();
  server_ = std::make_unique<ServerProcess>(dir_ / "data", std::vector<std::string>{"--batch-every", "1h"});
  ASSERT_TRUE(server_->running()) << server_->log();
  bool loaded = false;
  for (int i = 0; i < 50 && !loaded; ++i) {
    loaded = Get(port(), "/admin/models").body.find("\"loaded\":\"m000001\"") != std::string::npos;
    if (!loaded) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(loaded) << Get(port(), "/admin/models").body;
  ASSERT_EQ(Post(port(), "/admin/experiments",
                 R"({"id":"exp1","arms":[{"name":"control","weight":50},{"name":"treatment","weight":50}]})")
                .status,
            201);
  // The same requests every run, so the routes and statuses named are the same.
  for (const char* target : {"users", "creators", "items"})
    ASSERT_EQ(Post(port(), "/affinity/query", std::string(R"({"viewer_id":"u3","k":5,"target":")") + target + "\"}")
                  .status,
              200);
  ASSERT_EQ(Post(port(), "/affinity/query", R"({"viewer_id":"u3","target":"nothing"})").status, 422);
  ASSERT_EQ(Post(port(), "/affinity/feedback", R"({"events":[{"viewer_id":"u3","entity_id":"i7","action":"click"}]})")
                .status,
            202);
  ASSERT_EQ(Get(port(), "/admin/drift").status, 200);
  ASSERT_EQ(Get(port(), "/admin/features").status, 200);
  ASSERT_EQ(Post(port(), "/admin/checkpoint", "").status, 200);

  auto ready = Get(port(), "/readyz");
  ASSERT_EQ(ready.status, 200) << ready.body;
  std::set<std::string> ready_keys;
  KeyPaths(Json(ready.body), "", &ready_keys);
  ExpectGolden("readyz_keys.txt", ready_keys);

  auto stats = Get(port(), "/admin/stats");
  ASSERT_EQ(stats.status, 200) << stats.body;
  std::set<std::string> stats_keys;
  KeyPaths(Json(stats.body), "", &stats_keys);
  ExpectGolden("admin_stats_keys.txt", stats_keys);

  auto metrics = Get(port(), "/metrics");
  ASSERT_EQ(metrics.status, 200);
  ExpectGolden("metrics_series.txt", Series(metrics.body));
}

}  // namespace
}  // namespace affinity
