// Access control end to end (shared/CONTRACT.md, Access): a server configured
// with keys from `affinity keys new` answers each route only to a key with its
// scope, offers HTTP Basic on admin routes (the operator page), and keeps the
// keys out of its log; without keys it refuses to listen beyond loopback.
#include <openssl/evp.h>

#include <fstream>
#include <regex>

#include "server_fixture.h"

namespace affinity {
namespace {

class AccessTest : public ServerTest {
 protected:
  // A fresh key and its configuration line, as `affinity keys new` prints them.
  std::pair<std::string, std::string> NewKey(const std::string& name, const std::string& scopes) {
    auto made = RunAffinity({"keys", "new", "--name", name, "--scopes", scopes});
    EXPECT_EQ(made.exit_code, 0) << made.output;
    std::smatch key, line;
    EXPECT_TRUE(std::regex_search(made.output, key, std::regex("affk_[A-Za-z0-9_-]{43}"))) << made.output;
    EXPECT_TRUE(std::regex_search(made.output, line, std::regex("\\{ name = .* \\}"))) << made.output;
    return {key.str(), line.str()};
  }
  void ServeWithKeys() {
    auto [web, web_line] = NewKey("web", "query");
    auto [ops, ops_line] = NewKey("ops", "admin,query,feedback");
    web_ = web, ops_ = ops;
    std::ofstream(dir_ / "auth.toml") << "[auth]\nkeys = [ " << web_line << ",\n  " << ops_line << " ]\n";
    server_.reset();
    server_ = std::make_unique<ServerProcess>(dir_ / "data", std::vector<std::string>{"--config", dir_ / "auth.toml"});
    ASSERT_TRUE(server_->running()) << server_->log();
  }
  HttpResult Call(const std::string& method, const std::string& target, const std::string& authorization,
                  const std::string& body = "") {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!authorization.empty()) headers.emplace_back("Authorization", authorization);
    return HttpCall(port(), method, target, body, headers);
  }
  std::string web_, ops_;
};

TEST_F(AccessTest, EachRouteAnswersOnlyAKeyWithItsScope) {
  ServeWithKeys();
  const std::string query = R"({"viewer_id":"u1","k":5})";
  EXPECT_EQ(Call("GET", "/healthz", "").status, 200);
  EXPECT_EQ(Call("GET", "/readyz", "").status, 200);
  HttpResult anonymous = Call("POST", "/affinity/query", "", query);
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_EQ(ErrorCode(anonymous.body), "unauthorized");
  EXPECT_EQ(Call("POST", "/affinity/query", "Bearer affk_unknown", query).status, 401);
  EXPECT_EQ(Call("POST", "/affinity/query", "Bearer " + web_, query).status, 200);
  HttpResult feedback = Call("POST", "/affinity/feedback", "Bearer " + web_,
                             R"({"events":[{"viewer_id":"u1","entity_id":"i1","action":"click"}]})");
  EXPECT_EQ(feedback.status, 403);
  EXPECT_EQ(ErrorCode(feedback.body), "forbidden");
  EXPECT_EQ(Call("POST", "/affinity/feedback", "Bearer " + ops_,
                 R"({"events":[{"viewer_id":"u1","entity_id":"i1","action":"click"}]})")
                .status,
            202);
  // A person's history, the metrics and the admin views need admin.
  EXPECT_EQ(Call("GET", "/affinity/viewers/u1/events", "Bearer " + web_).status, 403);
  EXPECT_EQ(Call("GET", "/affinity/viewers/u1/events", "Bearer " + ops_).status, 200);
  EXPECT_EQ(Call("GET", "/metrics", "Bearer " + web_).status, 403);
  EXPECT_EQ(Call("GET", "/metrics", "Bearer " + ops_).status, 200);
  EXPECT_EQ(Call("GET", "/admin/stats", "Bearer " + ops_).status, 200);
  // A forced arm can name an unreleased model: admin keys only.
  HttpResult forced = HttpCall(port(), "POST", "/affinity/query", query,
                               {{"Authorization", "Bearer " + web_}, {"X-Affinity-Force-Arm", "exp:arm"}});
  EXPECT_EQ(forced.status, 403) << forced.body;
}

TEST_F(AccessTest, TheOperatorPageChallengesForBasicAndOpensWithTheKeyAsPassword) {
  ServeWithKeys();
  HttpResult challenged = Call("GET", "/admin/ui", "");
  EXPECT_EQ(challenged.status, 401);
  EXPECT_NE(challenged.headers.find("WWW-Authenticate: Basic realm=\"affinity\""), std::string::npos)
      << challenged.headers;
  // "anyone:<key>" in base64, as a browser sends it.
  const std::string credentials = "anyone:" + ops_;
  std::string b64(4 * ((credentials.size() + 2) / 3) + 1, '\0');
  b64.resize(size_t(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()),
                                    reinterpret_cast<const unsigned char*>(credentials.data()), int(credentials.size()))));
  HttpResult page = Call("GET", "/admin/ui", "Basic " + b64);
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("<html"), std::string::npos);
  // Basic is for the admin routes only.
  EXPECT_EQ(Call("POST", "/affinity/query", "Basic " + b64, R"({"viewer_id":"u1","k":5})").status, 401);
}

TEST_F(AccessTest, AKeyOverItsRateGets429WithRetryAfterAndALongerDeadlineNeedsAdmin) {
  auto [slow, slow_line] = NewKey("slow", "query");
  auto [web, web_line] = NewKey("web", "query");
  auto [ops, ops_line] = NewKey("ops", "admin,query");
  slow_line.replace(slow_line.rfind(" }"), 2, ", rate_per_s = 2 }");
  std::ofstream(dir_ / "limits.toml") << "[auth]\nkeys = [ " << slow_line << ",\n  " << web_line << ",\n  " << ops_line
                                      << " ]\n";
  server_.reset();
  server_ = std::make_unique<ServerProcess>(dir_ / "data", std::vector<std::string>{"--config", dir_ / "limits.toml"});
  ASSERT_TRUE(server_->running()) << server_->log();
  // Two a second with a burst of two: the third quick request is over the rate.
  EXPECT_EQ(Call("GET", "/affinity/entities/u1", "Bearer " + slow).status, 200);
  EXPECT_EQ(Call("GET", "/affinity/entities/u1", "Bearer " + slow).status, 200);
  HttpResult limited = Call("GET", "/affinity/entities/u1", "Bearer " + slow);
  EXPECT_EQ(limited.status, 429) << limited.body;
  EXPECT_EQ(ErrorCode(limited.body), "rate_limited");
  EXPECT_NE(limited.headers.find("Retry-After: 1"), std::string::npos) << limited.headers;
  EXPECT_EQ(Call("GET", "/affinity/entities/u1", "Bearer " + web).status, 200) << "another key has its own rate";
  // deadline_ms beyond the configured 50 ms: admin keys only.
  const std::string long_query = R"({"viewer_id":"u1","k":5,"deadline_ms":5000})";
  HttpResult refused = Call("POST", "/affinity/query", "Bearer " + web, long_query);
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_NE(refused.body.find("admin"), std::string::npos) << refused.body;
  EXPECT_NE(refused.body.find("deadline_ms"), std::string::npos) << refused.body;
  EXPECT_EQ(Call("POST", "/affinity/query", "Bearer " + web, R"({"viewer_id":"u1","k":5,"deadline_ms":40})").status, 200);
  EXPECT_EQ(Call("POST", "/affinity/query", "Bearer " + ops, long_query).status, 200);
  // Counted by the key's name, never the key.
  HttpResult metrics = Call("GET", "/metrics", "Bearer " + ops);
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find(R"(affinity_api_key_rate{field="limited",key="slow"} 1)"), std::string::npos)
      << metrics.body.substr(0, 4000);
  EXPECT_EQ(metrics.body.find(slow), std::string::npos);
}

TEST_F(AccessTest, KeysNeverReachTheServersLog) {
  ServeWithKeys();
  (void)Call("POST", "/affinity/query", "Bearer " + web_, R"({"viewer_id":"u1","k":5})");
  (void)Call("GET", "/admin/stats", "Bearer " + web_);
  (void)Call("GET", "/admin/stats", "Bearer " + ops_ + "x");
  server_->Stop(SIGTERM);
  const std::string log = server_->log();
  ASSERT_NE(log.find("stopping (signal"), std::string::npos) << "the log is read to its end: " << log;
  EXPECT_EQ(log.find(web_), std::string::npos);
  EXPECT_EQ(log.find(ops_), std::string::npos);
  EXPECT_EQ(log.find("affk_"), std::string::npos) << log;
}

TEST_F(AccessTest, WithoutKeysTheServerRefusesToListenBeyondLoopbackUnlessTold) {
  server_.reset();
  auto refused = RunAffinity({"serve", "--data", dir_ / "data", "--host", "0.0.0.0", "--port", "0"}, 60);
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.output.find("--insecure-listen"), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("[auth]"), std::string::npos) << refused.output;
  auto made = RunAffinity({"keys", "new", "--name", "web", "--scopes", "reader"});
  EXPECT_NE(made.exit_code, 0);
  EXPECT_NE(made.output.find("'reader' is not a scope"), std::string::npos) << made.output;
}

}  // namespace
}  // namespace affinity
