#include <gtest/gtest.h>

#include <openssl/evp.h>

#include "access/access.h"
#include "api/metrics.h"
#include "api/routes.h"
#include "config/config.h"

namespace affinity {
namespace {

std::string Basic(const std::string& user_colon_key) {
  std::string out(4 * ((user_colon_key.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(user_colon_key.data()), int(user_colon_key.size()));
  out.resize(size_t(n));
  return "Basic " + out;
}

// A configuration with two fresh keys, read back as a server reads it.
struct TwoKeys {
  std::string web = *NewApiKey(), ops = *NewApiKey(), feeder = *NewApiKey();
  Config config = *Config::FromTomlString(
      "[auth]\nkeys = [ " + KeyConfigLine("web", web, ScopeBit(Scope::kQuery), 50) + ",\n  " +
      KeyConfigLine("ops", ops, ScopeBit(Scope::kAdmin) | ScopeBit(Scope::kQuery), 0) + ",\n  " +
      KeyConfigLine("feeder", feeder, ScopeBit(Scope::kFeedback), 0) + " ]\n");
  Keyring keyring{config.auth};
};

TEST(AccessTest, AFreshKeyIsRecognisableAndItsConfigurationLineAdmitsIt) {
  TwoKeys k;
  EXPECT_EQ(k.web.rfind("affk_", 0), 0u);
  EXPECT_EQ(k.web.size(), 5u + 43u);
  EXPECT_NE(k.web, k.ops);
  ASSERT_EQ(k.config.auth.keys.size(), 3u);
  EXPECT_EQ(k.config.auth.keys[0].name, "web");
  EXPECT_DOUBLE_EQ(k.config.auth.keys[0].rate_per_s, 50);
  const ApiKey* web = k.keyring.Authenticate("Bearer " + k.web, false);
  ASSERT_NE(web, nullptr);
  EXPECT_EQ(web->name, "web");
  EXPECT_EQ(k.keyring.Authenticate("Bearer " + k.web + "x", false), nullptr);
  EXPECT_EQ(k.keyring.Authenticate(k.web, false), nullptr);  // not a Bearer credential
  EXPECT_EQ(k.keyring.Authenticate("bearer " + k.ops, false)->name, "ops");  // the scheme is case-insensitive
}

TEST(AccessTest, ARouteRefusesNoKeyWith401AndAKeyWithoutItsScopeWith403) {
  TwoKeys k;
  EXPECT_EQ(k.keyring.Authorize("", Scope::kQuery).status, 401);
  EXPECT_EQ(k.keyring.Authorize("Bearer nope", Scope::kQuery).status, 401);
  EXPECT_EQ(k.keyring.Authorize("Bearer " + k.web, Scope::kQuery).status, 200);
  EXPECT_EQ(k.keyring.Authorize("Bearer " + k.web, Scope::kQuery).key->name, "web");
  AccessDecision feedback = k.keyring.Authorize("Bearer " + k.web, Scope::kFeedback);
  EXPECT_EQ(feedback.status, 403);
  EXPECT_NE(feedback.message.find("feedback"), std::string::npos) << feedback.message;
  EXPECT_EQ(feedback.message.find(k.web), std::string::npos) << "the key never appears in a message";
  EXPECT_EQ(k.keyring.Authorize("Bearer " + k.web, Scope::kAdmin).status, 403);
  EXPECT_EQ(k.keyring.Authorize("Bearer " + k.ops, Scope::kAdmin).status, 200);
  EXPECT_EQ(k.keyring.Authorize("", Scope::kPublic).status, 200);
}

TEST(AccessTest, AdminRoutesTakeHttpBasicWithTheKeyAsPasswordAndOtherRoutesDoNot) {
  TwoKeys k;
  EXPECT_EQ(k.keyring.Authorize(Basic("anyone:" + k.ops), Scope::kAdmin).status, 200);
  EXPECT_EQ(k.keyring.Authorize(Basic(":" + k.ops), Scope::kAdmin).status, 200);
  EXPECT_EQ(k.keyring.Authorize(Basic("anyone:" + k.web), Scope::kAdmin).status, 403);
  EXPECT_EQ(k.keyring.Authorize(Basic("anyone:" + k.ops), Scope::kQuery).status, 401);
  EXPECT_EQ(k.keyring.Authorize(Basic(k.ops), Scope::kAdmin).status, 401);  // no user:password
  EXPECT_EQ(k.keyring.Authorize("Basic !!!!", Scope::kAdmin).status, 401);
  AccessDecision none = k.keyring.Authorize("", Scope::kAdmin);
  EXPECT_EQ(none.status, 401);
  EXPECT_TRUE(none.challenge_basic);
  EXPECT_FALSE(k.keyring.Authorize("", Scope::kQuery).challenge_basic);
}

TEST(AccessTest, MalformedBasicCredentialsAreRefusedNotACrash) {
  TwoKeys k;
  // Found by the Authorization harness: padding beyond two characters once
  // underflowed the decoded length (a request could end the process).
  for (const char* credentials : {"Basic b=======", "Basic ========", "Basic ab=c", "Basic a===", "Basic ===="})
    EXPECT_EQ(k.keyring.Authorize(credentials, Scope::kAdmin).status, 401) << credentials;
  EXPECT_EQ(k.keyring.Authorize(Basic("a:" + k.ops), Scope::kAdmin).status, 200);  // one '=' of padding or none
  EXPECT_EQ(k.keyring.Authorize(Basic("ab:" + k.ops), Scope::kAdmin).status, 200);
  EXPECT_EQ(k.keyring.Authorize(Basic("abc:" + k.ops), Scope::kAdmin).status, 200);
}

TEST(AccessTest, AForcedArmNeedsAnAdminKeyEvenOnAQueryRoute) {
  TwoKeys k;
  EXPECT_EQ(k.keyring.Authorize("Bearer " + k.web, Scope::kQuery, /*admin_extra=*/true).status, 403);
  EXPECT_EQ(k.keyring.Authorize("Bearer " + k.ops, Scope::kQuery, /*admin_extra=*/true).status, 200);
}

TEST(AccessTest, WithoutKeysEveryRouteIsOpen) {
  Keyring open{AuthOptions{}};
  EXPECT_FALSE(open.enabled());
  EXPECT_EQ(open.Authorize("", Scope::kAdmin).status, 200);
}

TEST(AccessTest, MalformedKeysInTheConfigurationAreRefusedByName) {
  const std::string hex(64, 'a');
  auto refused = [](const std::string& keys) {
    auto c = Config::FromTomlString("[auth]\nkeys = [" + keys + "]\n");
    return c.ok() ? std::string("accepted") : std::string(c.status().message());
  };
  EXPECT_NE(refused(R"({ name = "a", sha256 = "abc", scopes = ["query"] })").find("64 hex digits"), std::string::npos);
  EXPECT_NE(refused(R"({ name = "a", sha256 = ")" + hex + R"(", scopes = ["reader"] })").find("'reader' is not a scope"),
            std::string::npos);
  EXPECT_NE(refused(R"({ name = "a", sha256 = ")" + hex + R"(", scopes = [] })").find("at least one scope"),
            std::string::npos);
  EXPECT_NE(refused(R"({ name = "a", sha256 = ")" + hex + R"(", scopes = ["query"], rate = 5 })")
                .find("unknown setting auth.keys[0].rate"),
            std::string::npos);
  EXPECT_NE(refused(R"({ name = "a", sha256 = ")" + hex + R"(", scopes = ["query"] }, { name = "a", sha256 = ")" +
                    std::string(64, 'b') + R"(", scopes = ["query"] })")
                .find("a second key named 'a'"),
            std::string::npos);
  EXPECT_NE(refused(R"({ name = "a", scopes = ["query"] })").find("needs its sha256"), std::string::npos);
  EXPECT_EQ(refused(R"({ name = "a", sha256 = ")" + hex + R"(", scopes = ["query", "admin"] })"), "accepted");
}

// Every route of the table meets the access step with the scope it declares.
class AccessRouterTest : public ::testing::Test {
 protected:
  HttpResponse Call(const std::string& method, const std::string& path, const std::string& authorization) {
    HttpRequest req;
    req.method = method;
    req.path = path;
    if (!authorization.empty()) req.headers.emplace_back("authorization", authorization);
    return routes_.Handle(req);
  }
  static std::string PathOf(const std::string& pattern) {  // "{id*}" -> "x"
    std::string out;
    for (size_t i = 0; i < pattern.size(); ++i) {
      if (pattern[i] != '{') {
        out += pattern[i];
        continue;
      }
      i = pattern.find('}', i);
      out += "x";
    }
    return out;
  }
  TwoKeys keys_;
  Metrics metrics_;
  ApiRoutes routes_{ApiDeps{&keys_.config.server, nullptr, nullptr, nullptr, &metrics_, nullptr, {}, nullptr,
                            &keys_.keyring}};
};

TEST_F(AccessRouterTest, EveryRouteButThePublicOnesRefusesACallerWithoutAKey) {
  routes_.SetReady(true);
  for (const RouteEntry& e : routes_.routes().entries()) {
    const std::string what = e.method + " " + e.pattern;
    HttpResponse anonymous = Call(e.method, PathOf(e.pattern), "");
    if (e.scope == Scope::kPublic) {
      EXPECT_NE(anonymous.status, 401) << what;
      continue;
    }
    EXPECT_EQ(anonymous.status, 401) << what;
    bool challenges_basic = false;
    for (const auto& [name, value] : anonymous.headers)
      if (name == "WWW-Authenticate" && value.rfind("Basic", 0) == 0) challenges_basic = true;
    EXPECT_EQ(challenges_basic, e.scope == Scope::kAdmin) << what;
    // A key with every scope but the route's is refused with 403.
    const std::string& other = e.scope == Scope::kQuery ? keys_.feeder : keys_.web;
    EXPECT_EQ(Call(e.method, PathOf(e.pattern), "Bearer " + other).status, 403) << what;
  }
  EXPECT_EQ(Call("GET", "/admin/stats", Basic("ops:" + keys_.ops)).status, 200);
  EXPECT_EQ(Call("GET", "/admin/ui", Basic("ops:" + keys_.ops)).status, 200);
}

}  // namespace
}  // namespace affinity
