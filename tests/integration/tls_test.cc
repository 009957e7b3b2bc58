// HTTPS and audited admin actions end to end (shared/CONTRACT.md, Access): a
// server with `[server] tls_cert` / `tls_key` answers over TLS only and cuts
// off a client that never completes a handshake; a configuration with half of
// the pair, or a key that is not the certificate's, is refused at start. With
// `[auth]` keys, an admin action and a forced-arm query leave audit records
// naming the key's name, never the key.
#include <poll.h>

#include <fstream>
#include <regex>

#include "integration/server_fixture.h"
#include "testing/raw_socket.h"
#include "testing/tls.h"

namespace affinity {
namespace {

class SecureServingTest : public ServerTest {
 protected:
  // Each test starts the server it needs (over its own copy of the world).
  void SetUp() override {
    std::filesystem::copy(*world_ / "data", dir_ / "data", std::filesystem::copy_options::recursive);
    pem_ = MakeSelfSignedCertificate();
    ASSERT_FALSE(pem_.cert.empty());
    WriteText(dir_ / "server.crt", pem_.cert);
    WriteText(dir_ / "server.key", pem_.key);
  }
  std::pair<std::string, std::string> NewKey(const std::string& name, const std::string& scopes) {
    auto made = RunAffinity({"keys", "new", "--name", name, "--scopes", scopes});
    EXPECT_EQ(made.exit_code, 0) << made.output;
    std::smatch key, line;
    EXPECT_TRUE(std::regex_search(made.output, key, std::regex("affk_[A-Za-z0-9_-]{43}"))) << made.output;
    EXPECT_TRUE(std::regex_search(made.output, line, std::regex("\\{ name = .* \\}"))) << made.output;
    return {key.str(), line.str()};
  }
  // A configuration: `server` lines, and keys "web" (query) and "ops" (admin) when `keys`.
  std::string WriteConfig(const std::string& server, bool keys) {
    std::ofstream out(dir_ / "affinity.toml");
    out << "[server]\n" << server << "\n";
    if (keys) {
      auto [web, web_line] = NewKey("web", "query");
      auto [ops, ops_line] = NewKey("ops", "admin,query,feedback");
      web_ = web, ops_ = ops;
      out << "[auth]\nkeys = [ " << web_line << ",\n  " << ops_line << " ]\n";
    }
    return dir_ / "affinity.toml";
  }
  void Serve(const std::string& config) {
    server_ = std::make_unique<ServerProcess>(dir_ / "data", std::vector<std::string>{"--config", config});
    ASSERT_TRUE(server_->running()) << server_->log();
  }
  std::string Tls() const {
    return "tls_cert = \"" + (dir_ / "server.crt") + "\"\ntls_key = \"" + (dir_ / "server.key") +
           "\"\n";
  }
  HttpResult Https(const std::string& method, const std::string& target, const std::string& body = "",
                   const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    return HttpsCall(port(), pem_.cert, method, target, body, headers);
  }

  PemPair pem_;
  std::string web_, ops_;
};

TEST_F(SecureServingTest, AServerWithACertificateAnswersOverHttpsOnly) {
  Serve(WriteConfig(Tls() + "header_timeout_ms = 500\n", /*keys=*/true));
  EXPECT_NE(server_->log().find("listening on https://127.0.0.1:"), std::string::npos) << server_->log();
  EXPECT_EQ(Https("GET", "/healthz").status, 200);
  HttpResult query = Https("POST", "/affinity/query", R"({"viewer_id":"u1","k":5})", {{"Authorization", "Bearer " + web_}});
  ASSERT_EQ(query.status, 200) << query.body;
  EXPECT_FALSE(Ids(query.body).empty()) << query.body;
  // Keys are still needed over TLS.
  EXPECT_EQ(Https("POST", "/affinity/query", R"({"viewer_id":"u1","k":5})").status, 401);
  // Plain HTTP on the TLS port is not served.
  HttpResult plain = Get(port(), "/healthz");
  EXPECT_NE(plain.status, 200) << plain.body;
  EXPECT_EQ(plain.body.find("\"ok\""), std::string::npos) << plain.body;
  // The CLI fetches from an https:// URL, trusting $AFFINITY_CA_CERT.
  const std::string url = "https://127.0.0.1:" + std::to_string(port());
  ::setenv("AFFINITY_API_KEY", ops_.c_str(), 1);
  auto untrusted = RunAffinity({"experiment", "list", "--url", url}, 60);
  EXPECT_NE(untrusted.exit_code, 0) << "a self-signed certificate is not trusted unless named: " << untrusted.output;
  ::setenv("AFFINITY_CA_CERT", (dir_ / "server.crt").c_str(), 1);
  auto listed = RunAffinity({"experiment", "list", "--url", url}, 60);
  ::unsetenv("AFFINITY_CA_CERT");
  ::unsetenv("AFFINITY_API_KEY");
  EXPECT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_NE(listed.output.find("experiments"), std::string::npos) << listed.output;
  // A client that connects and never starts a handshake is cut off after the
  // header timeout (the server closes: the read ends).
  const int fd = OpenLoopback(port());
  ASSERT_GE(fd, 0);
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 20000), 1) << "the server kept a silent connection open";
  char buf[64];
  EXPECT_LE(::read(fd, buf, sizeof buf), 0);
  ::close(fd);
}

TEST_F(SecureServingTest, HalfACertificatePairOrAKeyOfAnotherCertificateIsRefusedAtStart) {
  auto half = RunAffinity({"serve", "--data", dir_ / "data", "--port", "0", "--config",
                           WriteConfig("tls_cert = \"" + (dir_ / "server.crt") + "\"\n", false)},
                          60);
  EXPECT_NE(half.exit_code, 0);
  EXPECT_NE(half.output.find("tls_key"), std::string::npos) << half.output;
  // A key of another certificate: one line naming the mismatch.
  WriteText(dir_ / "other.key", MakeSelfSignedCertificate().key);
  auto mismatched = RunAffinity({"serve", "--data", dir_ / "data", "--port", "0", "--config",
                                 WriteConfig("tls_cert = \"" + (dir_ / "server.crt") + "\"\ntls_key = \"" +
                                                 (dir_ / "other.key") + "\"\n",
                                             false)},
                                60);
  EXPECT_NE(mismatched.exit_code, 0);
  EXPECT_NE(mismatched.output.find("is not the private key of server.tls_cert"), std::string::npos)
      << mismatched.output;
  auto missing = RunAffinity({"serve", "--data", dir_ / "data", "--port", "0", "--config",
                              WriteConfig("tls_cert = \"" + (dir_ / "absent.crt") + "\"\ntls_key = \"" +
                                              (dir_ / "server.key") + "\"\n",
                                          false)},
                             60);
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.output.find("absent.crt"), std::string::npos) << missing.output;
}

TEST_F(SecureServingTest, AdminActionsAndForcedArmsAreAuditedNamingTheKeyNeverTheKey) {
  Serve(WriteConfig("", /*keys=*/true));
  const std::vector<std::pair<std::string, std::string>> ops = {{"Authorization", "Bearer " + ops_}};
  HttpResult created = HttpCall(port(), "POST", "/admin/experiments",
                                R"({"id":"exp1","arms":[{"name":"control","weight":50},{"name":"treatment","weight":50}]})",
                                ops);
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string created_id = created.Header("X-Affinity-Audit-Id");
  ASSERT_FALSE(created_id.empty()) << created.headers;
  HttpResult record = HttpCall(port(), "GET", "/admin/audit/" + created_id, "", ops);
  ASSERT_EQ(record.status, 200) << record.body;
  auto j = Json(record.body);
  EXPECT_EQ(std::string_view(j["event"]), "admin_action") << record.body;
  EXPECT_EQ(std::string_view(j["action"]), "experiments") << record.body;
  EXPECT_EQ(std::string_view(j["target"]), "/admin/experiments") << record.body;
  EXPECT_EQ(std::string_view(j["key_name"]), "ops") << record.body;
  EXPECT_EQ(int64_t(j["status"]), 201) << record.body;
  // A checkpoint and a stop, too.
  HttpResult checkpoint = HttpCall(port(), "POST", "/admin/checkpoint", "", ops);
  ASSERT_EQ(checkpoint.status, 200) << checkpoint.body;
  const std::string checkpoint_record =
      HttpCall(port(), "GET", "/admin/audit/" + checkpoint.Header("X-Affinity-Audit-Id"), "", ops).body;
  EXPECT_NE(checkpoint_record.find(R"("action":"checkpoint")"), std::string::npos) << checkpoint_record;
  EXPECT_NE(checkpoint_record.find(R"("key_name":"ops")"), std::string::npos) << checkpoint_record;
  // A forced-arm query: its record names the key and the forced arm.
  HttpResult forced = HttpCall(port(), "POST", "/affinity/query", R"({"viewer_id":"u3","k":5})",
                               {{"Authorization", "Bearer " + ops_}, {"X-Affinity-Force-Arm", "exp1=treatment"}});
  ASSERT_EQ(forced.status, 200) << forced.body;
  const std::string request_id{std::string_view(Json(forced.body)["request_id"])};
  const std::string query_record = HttpCall(port(), "GET", "/admin/audit/" + request_id, "", ops).body;
  auto q = Json(query_record);
  EXPECT_EQ(std::string_view(q["key_name"]), "ops") << query_record;
  EXPECT_EQ(std::string_view(q["response"]["experiment"]["arm"]), "treatment") << query_record;
  bool was_forced = false;
  EXPECT_FALSE(q["response"]["experiment"]["forced"].get(was_forced)) << query_record;
  EXPECT_TRUE(was_forced);
  // Forgetting a person is recorded by the route's pattern: the record keeps no trace of whom.
  HttpResult forgot = HttpCall(port(), "POST", "/admin/viewers/u3/forget", "", ops);
  ASSERT_FALSE(forgot.Header("X-Affinity-Audit-Id").empty()) << forgot.status << " " << forgot.body;
  const std::string forget_record =
      HttpCall(port(), "GET", "/admin/audit/" + forgot.Header("X-Affinity-Audit-Id"), "", ops).body;
  EXPECT_NE(forget_record.find(R"("action":"viewer_forget")"), std::string::npos) << forget_record;
  EXPECT_NE(forget_record.find(R"("key_name":"ops")"), std::string::npos) << forget_record;
  EXPECT_EQ(forget_record.find("u3"), std::string::npos) << forget_record;
  // A reading (GET) is not an action; a key without admin cannot act at all.
  EXPECT_TRUE(HttpCall(port(), "GET", "/admin/stats", "", ops).Header("X-Affinity-Audit-Id").empty());
  EXPECT_EQ(HttpCall(port(), "POST", "/admin/checkpoint", "", {{"Authorization", "Bearer " + web_}}).status, 403);
  // No record holds the key's bytes (nor any key's).
  for (const std::string& body : {record.body, checkpoint_record, query_record}) {
    EXPECT_EQ(body.find(ops_), std::string::npos) << body;
    EXPECT_EQ(body.find(ops_.substr(5, 16)), std::string::npos) << body;
    EXPECT_EQ(body.find("affk_"), std::string::npos) << body;
  }
}

}  // namespace
}  // namespace affinity
