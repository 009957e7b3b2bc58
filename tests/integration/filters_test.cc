// End to end: a query's label filter under candidate pressure, where the usual
// sources alone give more candidates than a query scores.
#include <fstream>

#include "integration/server_fixture.h"

namespace affinity {
namespace {

using namespace affinity::testing;

class FiltersTest : public ServerTest {
 protected:
  // An active viewer of the medium world gets more than the default 500
  // candidates from graph, walks, ANN, co-engagement and popularity; this world
  // is smaller, so the server scores 60, which its sources fill just as well.
  void ServeUnderPressure() {
    const std::string config = dir_ / "pressure.toml";
    std::ofstream(config) << "[serving]\nmax_candidates = 60\n";
    server_.reset();
    server_ = std::make_unique<ServerProcess>(dir_ / "data", std::vector<std::string>{"--config", config});
    ASSERT_TRUE(server_->running()) << server_->log();
  }
  std::vector<std::string> Items(const std::string& viewer, int k, const std::string& extra) {
    auto r = Post(port(), "/affinity/query",
                  R"({"viewer_id":")" + viewer + R"(","target":"items","k":)" + std::to_string(k) + extra + "}");
    EXPECT_EQ(r.status, 200) << r.body;
    return r.status == 200 ? Ids(r.body) : std::vector<std::string>{};
  }
};

TEST_F(FiltersTest, LabelledItemsOfANewCreatorReachAnActiveViewerThroughTheFilter) {
  ServeUnderPressure();
  auto r = Post(port(), "/affinity/entities",
                R"({"entities":[{"id":"c-kids","kind":"creator","name":"Kids Corner"},)"
                R"({"id":"kids-0","kind":"item","creator_id":"c-kids","labels":["kids"]},)"
                R"({"id":"kids-1","kind":"item","creator_id":"c-kids","labels":["kids"]},)"
                R"({"id":"kids-2","kind":"item","creator_id":"c-kids","labels":["kids","music"]}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  const size_t unfiltered = Items("u1", 100, "").size();
  ASSERT_LE(unfiltered, 60u) << "at most the scored candidates come back";
  ASSERT_GE(unfiltered, 10u) << "u1's sources fill the scored places (less the engaged and the creator cap)";
  for (const char* viewer : {"u1", "u2", "someone-new"}) {
    auto kids = Items(viewer, 5, R"(,"filter":{"labels_any":["kids"]})");
    std::sort(kids.begin(), kids.end());
    EXPECT_EQ(kids, (std::vector<std::string>{"kids-0", "kids-1", "kids-2"})) << viewer;
  }
  // labels_none takes the excluded ones out before the cut too: the list is as long as without it.
  auto rest = Items("u1", 100, R"(,"filter":{"labels_none":["kids"]})");
  EXPECT_EQ(rest.size(), unfiltered);
  for (const auto& id : rest) EXPECT_NE(id.rfind("kids-", 0), 0u) << id;
}

}  // namespace
}  // namespace affinity
