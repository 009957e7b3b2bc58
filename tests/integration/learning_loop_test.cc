// The learning loop end to end, as an operator runs it: a server logs its
// responses, viewers click what they like (naming the response in
// `context.request_id`), `affinity batch` trains a model from that, the model
// is promoted, more traffic arrives and the next batch trains its successor.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "integration/server_fixture.h"
#include "models/model_registry.h"

namespace affinity {
namespace {

namespace fs = std::filesystem;

// Each viewer's two favourite topics, from the generated world's own events
// (items carry their topic as their cohort), and the topic of every item.
struct Preferences {
  std::map<std::string, std::string> topic;
  std::map<std::string, std::set<std::string>> favourite;

  explicit Preferences(const fs::path& src) {
    std::ifstream entities(src / "entities.tsv");
    std::string line;
    std::getline(entities, line);
    while (std::getline(entities, line)) {
      std::vector<std::string> f;
      std::stringstream ss(line);
      for (std::string x; std::getline(ss, x, '\t');) f.push_back(x);
      if (f.size() >= 4 && f[1] == "item") topic[f[0]] = f[3];
    }
    std::ifstream events(src / "events.tsv");
    std::getline(events, line);
    std::map<std::string, std::map<std::string, int>> counts;
    while (std::getline(events, line)) {
      std::vector<std::string> f;
      std::stringstream ss(line);
      for (std::string x; std::getline(ss, x, '\t');) f.push_back(x);
      if (f.size() < 4 || f[3] == "hide") continue;
      if (auto t = topic.find(f[2]); t != topic.end()) ++counts[f[1]][t->second];
    }
    for (auto& [viewer, by_topic] : counts) {
      std::vector<std::pair<int, std::string>> order;
      for (auto& [t, n] : by_topic) order.push_back({-n, t});
      std::sort(order.begin(), order.end());
      for (size_t i = 0; i < order.size() && i < 2; ++i) favourite[viewer].insert(order[i].second);
    }
  }
};

class LearningLoopTest : public ServerTest {
 protected:
  void SetUp() override {
    std::ofstream(dir_ / "loop.toml") << "[serving]\nlog_ranker_inputs_share = 1.0\n"
                                      << "[ranker]\ngate_tolerance = 0.02\n";
    config_ = dir_ / "loop.toml";
    fs::copy(*world_ / "data", dir_ / "data", fs::copy_options::recursive);
    data_ = dir_ / "data";
    server_ = std::make_unique<ServerProcess>(data_, std::vector<std::string>{"--config", config_});
    ASSERT_TRUE(server_->running()) << server_->log();
    prefs_ = std::make_unique<Preferences>(*world_ / "src");
  }

  // `n` responses of random viewers, each clicked where it shows the viewer's
  // favourite topics (more often near the top), the click naming the response.
  // Returns how many got at least one click.
  int ClickedTraffic(int n, std::mt19937_64& rng) {
    std::uniform_real_distribution<double> u(0, 1);
    int clicked = 0;
    for (int i = 0; i < n; ++i) {
      const std::string viewer = "u" + std::to_string(rng() % 800);
      auto r = Post(port(), "/affinity/query", R"({"viewer_id":")" + viewer + R"(","target":"items","k":20})");
      EXPECT_EQ(r.status, 200) << r.body;
      auto doc = Json(r.body);
      const std::string rid{std::string_view(doc["request_id"])};
      std::string events;
      size_t pos = 0;
      for (auto res : doc["results"].get_array()) {
        const std::string id{std::string_view(res["entity_id"])};
        const bool liked = prefs_->favourite[viewer].count(prefs_->topic[id]) > 0;
        if (u(rng) < (liked ? 0.7 / (1 + 0.1 * double(pos)) : 0.02))
          events += std::string(events.empty() ? "" : ",") + R"({"viewer_id":")" + viewer + R"(","entity_id":")" + id +
                    R"(","action":"click","context":{"request_id":")" + rid + R"("}})";
        ++pos;
      }
      if (events.empty()) continue;
      EXPECT_EQ(Post(port(), "/affinity/feedback", R"({"events":[)" + events + "]}").status, 202);
      ++clicked;
    }
    return clicked;
  }

  CommandResult Batch() { return RunAffinity({"batch", "--data", data_, "--config", config_}); }

  bool WaitLoaded(const std::string& version) {
    for (int i = 0; i < 100; ++i) {
      if (Get(port(), "/admin/models").body.find("\"loaded\":\"" + version + "\"") != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  std::string data_, config_;
  std::unique_ptr<Preferences> prefs_;
};

// Issue 23, bug 2: the held-out split hashed a group's position in a
// newest-first list, so 60 new responses shifted it and the second batch
// scored the current model on groups it had trained on ("current model 0.8385"
// against its own validation NDCG of 0.5273): every successor was refused.
TEST_F(LearningLoopTest, TheSecondBatchScoresTheCurrentModelOnlyOnGroupsItNeverTrainedOn) {
  std::mt19937_64 rng(23);
  ASSERT_GT(ClickedTraffic(650, rng), 550);
  auto first = Batch();
  ASSERT_EQ(first.exit_code, 0) << first.output;
  ASSERT_NE(first.output.find("registered model m000001"), std::string::npos) << first.output;
  ASSERT_EQ(RunAffinity({"model", "promote", "--data", data_, "m000001", "--force"}).exit_code, 0);
  ASSERT_TRUE(WaitLoaded("m000001")) << Get(port(), "/admin/models").body;
  ASSERT_GT(ClickedTraffic(70, rng), 55);
  auto second = Batch();
  ASSERT_EQ(second.exit_code, 0) << second.output;
  ASSERT_NE(second.output.find("registered model m000002"), std::string::npos) << second.output;
  auto st = *ModelRegistry(data_).Read();
  const ModelVersion* m1 = st.Find("m000001");
  const ModelVersion* m2 = st.Find("m000002");
  ASSERT_TRUE(m1 && m2);
  // The current model measured on groups it never saw reads as it did on its
  // own held-out groups, not as on its training data.
  ASSERT_GE(m2->current_ndcg, 0) << second.output;
  EXPECT_NEAR(m2->current_ndcg, m1->ndcg, 0.05) << second.output;
  // Both were scored on the same held-out groups, and the successor ships.
  EXPECT_GT(m2->compared_groups, 50) << second.output;
  EXPECT_EQ(second.output.find("not shipped"), std::string::npos) << second.output;
  EXPECT_NE(second.output.find("starts as a canary"), std::string::npos) << second.output;
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// `make run`'s last step on a generated world with no model yet: its viewers
// query and click (`affinity simulate`), batch trains a model from those
// responses beside the server, and the server serves it, explained, when it
// passes the gate (the demo world's does: 0.70 against the blend's 0.66).
TEST_F(LearningLoopTest, TheDemoTrainsALearnedModelFromClickedResponsesAndServesIt) {
  server_.reset();
  fs::copy(*world_ / "src", dir_ / "data-src", fs::copy_options::recursive);
  const int port = FreePort();
  const std::string log = dir_ / "demo.log";
  const auto t0 = std::chrono::steady_clock::now();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    const std::string p = std::to_string(port), bin = AffinityBin();
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execlp("bash", "bash", "scripts/serve_demo.sh", bin.c_str(), data_.c_str(), "127.0.0.1", p.c_str(),
             static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  ::setpgid(pid, pid);
  auto output = [&] {
    std::stringstream ss;
    ss << std::ifstream(log).rdbuf();
    return ss.str();
  };
  bool ready = false;
  for (int i = 0; i < 1200 && !ready; ++i) {
    ready = output().find("Press Ctrl-C to stop.") != std::string::npos;
    if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  RecordProperty("demo_loop_seconds", std::to_string(seconds));
  const std::string out = output();
  EXPECT_TRUE(ready) << out;
  EXPECT_NE(out.find("responses clicked"), std::string::npos) << out;
  EXPECT_NE(out.find("demo: ranker: registered model m000001"), std::string::npos) << out;
  // This small world's model may lose to the blend on held-out groups: then
  // the gate refuses it, the demo says so, and model list shows why.
  const bool promoted = out.find("); promoted") != std::string::npos;
  auto r = Post(port, "/affinity/query", R"({"viewer_id":"u1","target":"items","k":5})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto doc = Json(r.body);
  const std::string version{std::string_view(doc["model_version"])};
  auto list = RunAffinity({"model", "list", "--url", "http://127.0.0.1:" + std::to_string(port)});
  ASSERT_EQ(list.exit_code, 0) << list.output;
  if (promoted) {
    EXPECT_NE(out.find("the learned ranker (LambdaMART m000001"), std::string::npos) << out;
    EXPECT_EQ(version.rfind("lambdamart-m000001/", 0), 0u) << r.body;
    EXPECT_NE(r.body.find("\"method\":\"saabas\""), std::string::npos) << "model attributions: " << r.body;
    EXPECT_NE(list.output.find("promoted"), std::string::npos) << list.output;
  } else {
    EXPECT_NE(out.find("not shipped: validation NDCG"), std::string::npos) << out;
    EXPECT_NE(out.find("the blend ranks (no learned model passed the gate yet"), std::string::npos) << out;
    EXPECT_EQ(version.rfind("blend-", 0), 0u) << r.body;
    EXPECT_NE(list.output.find("refused"), std::string::npos) << list.output;
    EXPECT_NE(list.output.find("not shipped: validation NDCG"), std::string::npos) << list.output;
    EXPECT_NE(Get(port, "/admin/models").body.find("\"state\":\"refused\""), std::string::npos);
  }
  ::kill(-pid, SIGINT);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output();
}

}  // namespace
}  // namespace affinity
