// HTTPS in the HTTP server (tls_cert / tls_key) and audit records that name
// the API key's name, never the key (shared/CONTRACT.md, Access).
#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>

#include "api/http_server.h"
#include "audit/audit_record.h"
#include "base/config.h"
#include "testing/http_client.h"
#include "testing/temp_dir.h"
#include "testing/tls.h"

namespace affinity {
namespace {

using namespace affinity::testing;

class TlsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pem_ = MakeSelfSignedCertificate();
    ASSERT_FALSE(pem_.cert.empty());
    WriteText(dir_ / "server.crt", pem_.cert);
    WriteText(dir_ / "server.key", pem_.key);
  }
  HttpServerOptions Options(const std::string& key_file) {
    HttpServerOptions o;
    o.threads = 1;
    o.tls_cert = dir_ / "server.crt";
    o.tls_key = key_file;
    return o;
  }
  static HttpResponse Echo(const HttpRequest& r) { return {200, "{\"path\":\"" + r.path + "\"}"}; }

  TempDir dir_;
  PemPair pem_;
};

TEST_F(TlsServerTest, AServerWithACertificateAnswersHttpsAndNotPlainHttp) {
  HttpServer server(Options(dir_ / "server.key"), Echo);
  ASSERT_TRUE(server.Start().ok());
  HttpResult https = HttpsCall(server.port(), pem_.cert, "GET", "/a");
  EXPECT_EQ(https.status, 200) << https.body;
  EXPECT_EQ(https.body, "{\"path\":\"/a\"}");
  HttpResult plain = HttpCall(server.port(), "GET", "/a");
  EXPECT_NE(plain.status, 200);
  // A client that trusts another certificate refuses the server's.
  HttpResult distrusted = HttpsCall(server.port(), MakeSelfSignedCertificate().cert, "GET", "/a");
  EXPECT_EQ(distrusted.status, -1) << distrusted.body;
}

TEST_F(TlsServerTest, AKeyThatIsNotTheCertificatesOrAnUnreadableFileFailsTheStartNamingIt) {
  WriteText(dir_ / "other.key", MakeSelfSignedCertificate().key);
  HttpServer mismatched(Options(dir_ / "other.key"), Echo);
  absl::Status st = mismatched.Start();
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("is not the private key of server.tls_cert"), std::string::npos) << st;
  HttpServer missing(Options(dir_ / "absent.key"), Echo);
  st = missing.Start();
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("absent.key"), std::string::npos) << st;
}

TEST(TlsSettingsTest, ACertificateWithoutItsKeyOrAKeyWithoutItsCertificateIsRefused) {
  ServerOptions o;
  EXPECT_TRUE(o.Validate().ok());
  o.tls_cert = "/etc/affinity/server.crt";
  absl::Status half = o.Validate();
  EXPECT_FALSE(half.ok());
  EXPECT_NE(half.message().find("tls_cert is set without tls_key"), std::string::npos) << half;
  o.tls_key = "/etc/affinity/server.key";
  EXPECT_TRUE(o.Validate().ok());
  o.tls_cert.clear();
  EXPECT_FALSE(o.Validate().ok());
}

// A response served in a forced arm, with one result.
QueryResponse ForcedResponse() {
  QueryResponse resp;
  resp.request_id = "q_1";
  resp.model_version = "blend/s1";
  QueryResult r;
  r.entity_id = "i1";
  r.score = 0.5;
  r.reason = "popular";
  resp.results.push_back(r);
  resp.experiments.push_back({"exp1", "treatment", /*forced=*/true});
  return resp;
}

TEST(AuditKeyNameTest, ARecordOfARequestMadeWithAKeyIsSchemaFiveAndNamesTheKeysNameAndTheForcedArm) {
  QueryRequest req;
  req.viewer_id = "u1";
  req.key_name = "ops";
  const std::string stored = BuildAuditRecord(req, ForcedResponse(), 1000, /*with_inputs=*/false);
  EXPECT_EQ(stored[0], '\x05');
  auto expanded = ExpandAuditRecord(stored);
  ASSERT_TRUE(expanded.ok()) << expanded.status();
  simdjson::dom::parser parser;
  simdjson::dom::element j = parser.parse(*expanded);
  EXPECT_EQ(int64_t(j["schema"]), 5);
  EXPECT_EQ(std::string_view(j["key_name"]), "ops") << *expanded;
  EXPECT_EQ(std::string_view(j["response"]["experiment"]["arm"]), "treatment") << *expanded;
  EXPECT_TRUE(bool(j["response"]["experiment"]["forced"])) << *expanded;
  // Read back as schema 4 is: the served record for attribution, the logged rows.
  auto served = ReadServedRecord(stored);
  ASSERT_TRUE(served.ok()) << served.status();
  EXPECT_EQ(served->viewer_id, "u1");
  EXPECT_TRUE(served->experiments.empty()) << "a forced arm is not analysed";
  EXPECT_TRUE(ReadLoggedResponse(stored).ok());
  EXPECT_FALSE(ReadLoggedResponse(stored.substr(0, stored.size() - 1)).ok()) << "a cut key name is refused";
}

TEST(AuditKeyNameTest, ARecordWithoutAKeyStaysSchemaFourAndNamesNoKey) {
  QueryRequest req;
  req.viewer_id = "u1";
  const std::string stored = BuildAuditRecord(req, ForcedResponse(), 1000, /*with_inputs=*/false);
  EXPECT_EQ(stored[0], '\x04');
  auto expanded = ExpandAuditRecord(stored);
  ASSERT_TRUE(expanded.ok()) << expanded.status();
  EXPECT_NE(expanded->find("\"schema\":4"), std::string::npos) << *expanded;
  EXPECT_EQ(expanded->find("key_name"), std::string::npos) << *expanded;
}

TEST(AuditKeyNameTest, AnAdminActionRecordNamesTheActionTheTargetAndTheKeysName) {
  const std::string id = NewAdminActionId(1'767'225'600'123);
  EXPECT_EQ(id.rfind("admin_", 0), 0u) << id;
  EXPECT_NE(NewAdminActionId(1'767'225'600'123), id);
  const std::string stored =
      BuildAdminActionRecord(id, {"experiment_stop", "POST", "/admin/experiments/exp1/stop", "ops", 200}, 1'767'225'600'123);
  EXPECT_EQ(stored.rfind("{\"request_id\":\"" + id + "\",\"ts\":1767225600123,\"schema\":5", 0), 0u) << stored;
  simdjson::dom::parser parser;
  simdjson::dom::element j = parser.parse(stored);
  EXPECT_EQ(std::string_view(j["event"]), "admin_action");
  EXPECT_EQ(std::string_view(j["action"]), "experiment_stop");
  EXPECT_EQ(std::string_view(j["target"]), "/admin/experiments/exp1/stop");
  EXPECT_EQ(std::string_view(j["key_name"]), "ops");
  EXPECT_EQ(int64_t(j["status"]), 200);
  // Readable as it is stored; training and attribution pass over it.
  EXPECT_EQ(*ExpandAuditRecord(stored), stored);
  EXPECT_FALSE(ReadServedRecord(stored).ok());
  EXPECT_FALSE(ReadLoggedResponse(stored).ok());
}

}  // namespace
}  // namespace affinity
