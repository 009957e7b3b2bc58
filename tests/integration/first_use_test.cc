// End to end: what a new user meets first — the command line, the demo script,
// the probes while a server starts, HTTP methods and the validation of bodies.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <thread>

#include "integration/server_fixture.h"

namespace affinity {
namespace {

using namespace affinity::testing;

class FirstUseTest : public ServerTest {};

TEST(CommandLineTest, ServeRefusesAPortOutOfRange) {
  TempDir dir;
  auto r = RunAffinity({"serve", "--data", dir / "d", "--port", "99999"}, /*timeout_seconds=*/20);
  EXPECT_NE(r.exit_code, 124) << "it served instead of refusing";
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("99999"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "d")) << "nothing is created for a refused command";
}

TEST(CommandLineTest, VersionIsPrinted) {
  auto r = RunAffinity({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output.rfind("affinity ", 0), 0u) << r.output;
}

TEST(CommandLineTest, ModelCommandsRefuseADataDirThatDoesNotExist) {
  TempDir dir;
  for (std::vector<std::string> args : {std::vector<std::string>{"model", "list", "--data", dir / "typo"},
                                        {"model", "rollback", "--data", dir / "typo"}}) {
    auto r = RunAffinity(args);
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("no data dir"), std::string::npos) << r.output;
  }
}

TEST(CommandLineTest, RefusedImportLeavesNoEmptyStoreBehind) {
  TempDir dir;
  std::filesystem::create_directories(dir / "src");
  std::ofstream(dir / "src/entities.tsv") << "id\tkind\tcreator_id\tcohort\nu1\tuser\t\t\nu2\tuser\t\t\n";
  std::ofstream(dir / "src/events.tsv") << "ts\tviewer_id\tentity_id\taction\tweight\n1\tu1\tu2\tfollow\t3\n";
  auto r = RunAffinity({"import", "--data", dir / "fresh", "--format", "native", dir / "src"});
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("events.tsv:2"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "fresh")) << "the refused import left a data dir behind";
  // Into an existing (empty) folder: the folder stays, no db/ in it.
  std::filesystem::create_directories(dir / "existing");
  r = RunAffinity({"import", "--data", dir / "existing", "--format", "native", dir / "src"});
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_TRUE(std::filesystem::exists(dir / "existing"));
  EXPECT_FALSE(std::filesystem::exists(dir / "existing/db"));
}

TEST(CommandLineTest, ServeOnADirWithoutDataSaysSoLoudly) {
  TempDir dir;
  ServerProcess server(dir / "typo");
  ASSERT_TRUE(server.running()) << server.log();
  EXPECT_NE(server.log().find("holds no data yet"), std::string::npos) << server.log();
}

TEST(GenerateCommandTest, TimelineEndsAtTheCurrentHourByDefault) {
  TempDir dir;
  auto r = RunAffinity({"generate", "--out", dir / "w", "--users", "50", "--creators", "5", "--items", "80",
                        "--events", "2000", "--seed", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(dir / "w/events.tsv");
  std::string line;
  int64_t newest = 0;
  std::getline(in, line);  // header
  while (std::getline(in, line)) newest = std::max<int64_t>(newest, std::stoll(line.substr(0, line.find('\t'))));
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_LE(newest, now);
  EXPECT_GT(newest, now - 2 * 3'600'000) << "the history should end within the last hour";
  // A fixed end keeps runs reproducible.
  auto a = RunAffinity({"generate", "--out", dir / "a", "--users", "50", "--creators", "5", "--items", "80",
                        "--events", "2000", "--seed", "3", "--end-ts", "1767225600000"});
  ASSERT_EQ(a.exit_code, 0) << a.output;
  std::ifstream fixed(dir / "a/events.tsv");
  std::getline(fixed, line);
  int64_t fixed_newest = 0;
  while (std::getline(fixed, line))
    fixed_newest = std::max<int64_t>(fixed_newest, std::stoll(line.substr(0, line.find('\t'))));
  EXPECT_LE(fixed_newest, 1767225600000);
  EXPECT_GT(fixed_newest, 1767225600000 - 3'600'000);
}

// The port opens before the state loads: a liveness probe sees the process
// alive (/healthz 200) while /readyz says 503 with the loading progress.
TEST_F(FirstUseTest, HealthzAnswersAndReadyzSays503WhileTheStateLoads) {
  server_.reset();
  ServerProcess starting(dir_ / "data", {}, /*wait_until_ready=*/false);
  ASSERT_GT(starting.port(), 0) << starting.log();
  bool saw_not_ready = false, saw_ready = false;
  for (int i = 0; i < 20000 && !saw_ready; ++i) {
    auto ready = Get(starting.port(), "/readyz");
    if (ready.status == 503) {
      if (!saw_not_ready) {
        EXPECT_EQ(ErrorCode(ready.body), "not_ready");
        EXPECT_NE(ready.body.find("\"progress\""), std::string::npos) << ready.body;
        auto health = Get(starting.port(), "/healthz");
        EXPECT_EQ(health.status, 200) << health.body;
        EXPECT_EQ(Post(starting.port(), "/affinity/query", R"({"viewer_id":"u1"})").status, 503);
      }
      saw_not_ready = true;
    } else {
      ASSERT_EQ(ready.status, 200) << ready.body;
      saw_ready = true;
    }
  }
  EXPECT_TRUE(saw_not_ready) << "the port opened only once the server was ready";
  EXPECT_TRUE(saw_ready);
  EXPECT_EQ(Post(starting.port(), "/affinity/query", R"({"viewer_id":"u1"})").status, 200);
}

TEST_F(FirstUseTest, ProbesAndMetricsAnswerOnlyGetAndSayWhatIsAllowed) {
  for (auto [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"DELETE", "/readyz"}, {"POST", "/healthz"}, {"POST", "/metrics"}, {"PUT", "/admin/stats"}}) {
    auto r = HttpCall(port(), method, path);
    EXPECT_EQ(r.status, 405) << method << " " << path;
    EXPECT_EQ(r.Header("Allow"), "GET") << method << " " << path << "\n" << r.headers;
  }
  auto r = HttpCall(port(), "GET", "/affinity/query");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.Header("Allow"), "POST");
  EXPECT_EQ(Get(port(), "/healthz").status, 200);
  EXPECT_EQ(Get(port(), "/metrics").status, 200);
}

TEST_F(FirstUseTest, UnknownFieldsAreRefusedByName) {
  auto r = Post(port(), "/affinity/query", R"({"viewer_id":"u1","kk":5})");
  EXPECT_EQ(r.status, 422);
  EXPECT_NE(r.body.find("unknown field 'kk'"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("did you mean 'k'"), std::string::npos) << r.body;
  r = Post(port(), "/affinity/feedback", R"({"events":[{"viewer_id":"u1","entity_id":"i5","action":"click","wieght":2}]})");
  EXPECT_EQ(r.status, 422);
  EXPECT_NE(r.body.find("events[0]: unknown field 'wieght'"), std::string::npos) << r.body;
  r = Post(port(), "/affinity/entities", R"({"entities":[{"id":"i-x","kind":"item","creator":"c1"}]})");
  EXPECT_EQ(r.status, 422);
  EXPECT_NE(r.body.find("entities[0]: unknown field 'creator'"), std::string::npos) << r.body;
  r = Post(port(), "/affinity/feedback", R"({"events":[],"extra":1})");
  EXPECT_EQ(r.status, 422);
}

TEST_F(FirstUseTest, FeedbackWithAnImplausibleTimeOrAWeightAgainstItsActionIsRefused) {
  struct Case {
    const char* event;
    const char* says;
  };
  for (const Case& c : {Case{R"({"viewer_id":"u1","entity_id":"i5","action":"like","ts":1})", "before 1990"},
                        Case{R"({"viewer_id":"u1","entity_id":"i5","action":"click","ts":1767225600})", "seconds"},
                        Case{R"({"viewer_id":"u1","entity_id":"i5","action":"like","weight":-1000})", "negative"},
                        Case{R"({"viewer_id":"u1","entity_id":"i5","action":"hide","weight":3})", "positive"}}) {
    auto r = Post(port(), "/affinity/feedback", std::string(R"({"events":[)") + c.event + "]}");
    EXPECT_EQ(r.status, 422) << c.event;
    EXPECT_NE(r.body.find(c.says), std::string::npos) << r.body;
  }
  auto ok = Post(port(), "/affinity/feedback",
                 R"({"events":[{"viewer_id":"u1","entity_id":"i5","action":"hide","weight":-2},
                               {"viewer_id":"u1","entity_id":"i6","action":"like","weight":2.5}]})");
  EXPECT_EQ(ok.status, 202) << ok.body;
}

// The new-creator floor never takes the head of a list: a k = 1 list is the
// best result, the same one a k = 20 list starts with.
TEST_F(FirstUseTest, ShortListsStartWithTheBestResultNotAFloorPlacement) {
  for (const char* viewer : {"u1", "u2", "u3", "u4"}) {
    auto one = Json(Post(port(), "/affinity/query", std::string(R"({"viewer_id":")") + viewer +
                                                        R"(","target":"items","k":1})")
                        .body);
    auto results = one["results"].get_array();
    ASSERT_EQ(results.size(), 1u);
    simdjson::dom::element placed;
    EXPECT_TRUE(results.at(0)["placed_by"].get(placed)) << "k=1 filled by the floor for " << viewer;
    const std::string top(std::string_view(results.at(0)["entity_id"]));
    auto twenty = Ids(Post(port(), "/affinity/query", std::string(R"({"viewer_id":")") + viewer +
                                                          R"(","target":"items","k":20})")
                          .body);
    ASSERT_FALSE(twenty.empty());
    EXPECT_EQ(twenty[0], top) << viewer;
  }
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Every command's usage errors (a missing option, a bad value, an unknown
// command) exit 2 with one line on stderr, as CLI11's own parse errors
// conventionally do (it used 105-109 and a second "Run with --help" line).
TEST(CommandLineTest, UsageErrorsExitWithTwoAndOneLine) {
  TempDir dir;
  const std::vector<std::vector<std::string>> cases = {
      {"batch"},
      {"no-such-command"},
      {"serve", "--data", dir / "d", "--port", "99999"},
      {"generate", "--out", dir / "g", "--users", "many"},
      {"model", "list"},
      {"model", "promote", "--data", dir / "d"},
      {"features", "get", "popularity"},
      {"experiment"},
  };
  for (const auto& args : cases) {
    auto r = RunAffinity(args);
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    EXPECT_EQ(r.exit_code, 2) << joined << "\n" << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << joined << "\n" << r.output;
    EXPECT_EQ(r.output.rfind("affinity: ", 0), 0u) << joined << "\n" << r.output;
  }
  EXPECT_EQ(RunAffinity({"batch", "--help"}).exit_code, 0);
}

// `features` prints tables and indented records (the raw JSON with --json);
// `model list` asks a running server with --url.
TEST_F(FirstUseTest, FeatureAndModelCommandsPrintForPeople) {
  const std::string url = "http://127.0.0.1:" + std::to_string(port());
  auto list = RunAffinity({"features", "list", "--url", url});
  ASSERT_EQ(list.exit_code, 0) << list.output;
  EXPECT_EQ(list.output.rfind("group ", 0), 0u) << list.output;
  EXPECT_NE(list.output.find("\npopularity "), std::string::npos) << list.output;
  auto raw = RunAffinity({"features", "list", "--url", url, "--json"});
  EXPECT_EQ(raw.output.rfind("{\"groups\":", 0), 0u) << raw.output;
  auto get = RunAffinity({"features", "get", "popularity", "i1", "--url", url});
  ASSERT_EQ(get.exit_code, 0) << get.output;
  EXPECT_NE(get.output.find("feature_vector\n"), std::string::npos) << get.output;
  EXPECT_NE(get.output.find("\n  "), std::string::npos) << "nested values are indented:\n" << get.output;
  EXPECT_NE(get.output.find(" ago)"), std::string::npos) << "times are read as dates:\n" << get.output;
  auto models = RunAffinity({"model", "list", "--url", url});
  ASSERT_EQ(models.exit_code, 0) << models.output;
  EXPECT_NE(models.output.find("no models yet"), std::string::npos) << models.output;
}

// `make run` ends with the demo script; Ctrl-C (SIGINT to the whole process
// group, as a terminal sends it) must end it cleanly with status 0.
TEST_F(FirstUseTest, DemoScriptEndsCleanlyOnCtrlC) {
  server_.reset();
  const int port = FreePort();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    const std::string data = dir_ / "data", p = std::to_string(port), bin = AffinityBin();
    ::execlp("bash", "bash", "scripts/serve_demo.sh", bin.c_str(), data.c_str(), "127.0.0.1", p.c_str(),
             static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  ::setpgid(pid, pid);
  bool ready = false;
  for (int i = 0; i < 600 && !ready; ++i) {
    ready = Get(port, "/readyz").status == 200;
    if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(ready);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the script is waiting on the server
  ::kill(-pid, SIGINT);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status)) << "ended by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_NE(Get(port, "/healthz").status, 200) << "the server outlived the script";
}

}  // namespace
}  // namespace affinity
