// The limits of docs/security.md ("Limits"): each key's token bucket on a
// clock the test holds, trusted proxies and the client they name, the
// per-peer connection cap, the in-flight cap and the settings that hold them.
#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <thread>

#include "access/rate_limiter.h"
#include "access/trusted_proxies.h"
#include "api/connection_table.h"
#include "api/metrics.h"
#include "api/route_util.h"
#include "api/routes.h"
#include "config/config.h"

namespace affinity {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

std::vector<ApiKey> KeysWithRates(std::initializer_list<double> rates) {
  std::vector<ApiKey> keys;
  for (double r : rates) {
    ApiKey k;
    k.name = "k" + std::to_string(keys.size());
    k.rate_per_s = r;
    k.scopes = ScopeBit(Scope::kQuery);
    keys.push_back(k);
  }
  return keys;
}

TEST(RateLimiterTest, AKeyMayMakeABurstOfOneSecondsWorthThenIsRefusedWithRetryAfter) {
  const std::vector<ApiKey> keys = KeysWithRates({2});
  RateLimiter limiter(keys);
  const int64_t t0 = 1000 * kSecond;
  EXPECT_TRUE(limiter.Take(keys[0], t0).allowed);
  EXPECT_TRUE(limiter.Take(keys[0], t0).allowed);
  const RateDecision third = limiter.Take(keys[0], t0);
  EXPECT_FALSE(third.allowed);
  EXPECT_EQ(third.retry_after_s, 1) << "half a second to wait is said as one whole second";
  const std::vector<KeyRateStats> stats = limiter.Stats();
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].name, "k0");
  EXPECT_EQ(stats[0].burst, 2);
  EXPECT_EQ(stats[0].allowed, 2u);
  EXPECT_EQ(stats[0].limited, 1u);
}

TEST(RateLimiterTest, TokensComeBackAtTheKeysRateAndRefusalsTakeNone) {
  const std::vector<ApiKey> keys = KeysWithRates({2});
  RateLimiter limiter(keys);
  const int64_t t0 = 1000 * kSecond;
  ASSERT_TRUE(limiter.Take(keys[0], t0).allowed);
  ASSERT_TRUE(limiter.Take(keys[0], t0).allowed);
  for (int i = 0; i < 10; ++i) ASSERT_FALSE(limiter.Take(keys[0], t0 + kSecond / 4).allowed) << i;
  // Half a second later one token is back (the refusals took none), not two.
  EXPECT_TRUE(limiter.Take(keys[0], t0 + kSecond / 2).allowed);
  EXPECT_FALSE(limiter.Take(keys[0], t0 + kSecond / 2).allowed);
  // A long pause fills the bucket to its burst, no further.
  const int64_t later = t0 + 60 * kSecond;
  EXPECT_TRUE(limiter.Take(keys[0], later).allowed);
  EXPECT_TRUE(limiter.Take(keys[0], later).allowed);
  EXPECT_FALSE(limiter.Take(keys[0], later).allowed);
}

TEST(RateLimiterTest, ASlowKeysRetryAfterIsTheWholeSecondsUntilItsNextToken) {
  const std::vector<ApiKey> keys = KeysWithRates({0.2});  // one request per 5 s, a burst of 1
  RateLimiter limiter(keys);
  const int64_t t0 = 1000 * kSecond;
  ASSERT_TRUE(limiter.Take(keys[0], t0).allowed);
  EXPECT_EQ(limiter.Take(keys[0], t0).retry_after_s, 5);
  EXPECT_EQ(limiter.Take(keys[0], t0 + 3 * kSecond + 1).retry_after_s, 2);
  EXPECT_TRUE(limiter.Take(keys[0], t0 + 5 * kSecond).allowed);
}

TEST(RateLimiterTest, KeysWithoutARateAreUnlimitedAndKeysDoNotShareABucket) {
  const std::vector<ApiKey> keys = KeysWithRates({0, 1, 1});
  RateLimiter limiter(keys);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(limiter.Take(keys[0], kSecond).allowed);
  EXPECT_TRUE(limiter.Take(keys[1], kSecond).allowed);
  EXPECT_FALSE(limiter.Take(keys[1], kSecond).allowed);
  EXPECT_TRUE(limiter.Take(keys[2], kSecond).allowed) << "another key's bucket is its own";
  ApiKey stranger = keys[1];
  EXPECT_TRUE(limiter.Take(stranger, kSecond).allowed) << "a key the limiter was not made with is not limited";
}

TEST(RateLimiterTest, ConcurrentTakersNeverGetMoreThanTheBurst) {
  const std::vector<ApiKey> keys = KeysWithRates({50});
  RateLimiter limiter(keys);
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) allowed += limiter.Take(keys[0], 7 * kSecond).allowed ? 1 : 0;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(allowed.load(), 50);
}

TEST(TrustedProxiesTest, AddressesAndNetworksOfBothFamiliesAreParsedAndMatched) {
  auto trusted = TrustedProxies::Parse({"10.0.0.0/8", "192.168.1.7", "fd00::/8", "::1"});
  ASSERT_TRUE(trusted.ok()) << trusted.status();
  EXPECT_TRUE(trusted->Contains("10.200.3.4"));
  EXPECT_TRUE(trusted->Contains("::ffff:10.1.1.1")) << "an IPv4 peer on a dual-stack socket";
  EXPECT_TRUE(trusted->Contains("192.168.1.7"));
  EXPECT_FALSE(trusted->Contains("192.168.1.8"));
  EXPECT_FALSE(trusted->Contains("11.0.0.1"));
  EXPECT_TRUE(trusted->Contains("fd12::5"));
  EXPECT_TRUE(trusted->Contains("::1"));
  EXPECT_FALSE(trusted->Contains("fe80::1"));
  EXPECT_FALSE(trusted->Contains("not-an-address"));
  EXPECT_FALSE(trusted->Contains(""));
  EXPECT_TRUE(TrustedProxies::Parse({"172.16.0.0/12"})->Contains("172.31.255.255"));
  EXPECT_FALSE(TrustedProxies::Parse({"172.16.0.0/12"})->Contains("172.32.0.0"));
  EXPECT_FALSE(TrustedProxies().Contains("127.0.0.1")) << "none trusted by default";
}

TEST(TrustedProxiesTest, AnEntryThatIsNeitherAnAddressNorANetworkIsRefusedByName) {
  for (const char* bad : {"10.0.0.0/33", "proxy.internal", "10.0.0.1/", "::1/129", "10.0.0.0/8x", ""}) {
    auto parsed = TrustedProxies::Parse({"127.0.0.1", bad});
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_NE(parsed.status().message().find(std::string("'") + bad + "'"), std::string::npos) << parsed.status();
  }
}

TEST(ClientAddressTest, ASpoofedForwardedForFromAnUntrustedPeerIsIgnored) {
  const TrustedProxies trusted = *TrustedProxies::Parse({"10.0.0.0/8"});
  EXPECT_EQ(ClientAddress("203.0.113.9", "1.2.3.4", trusted), "203.0.113.9");
  EXPECT_EQ(ClientAddress("203.0.113.9", "", trusted), "203.0.113.9");
  EXPECT_EQ(ClientAddress("10.0.0.5", "1.2.3.4", TrustedProxies()), "10.0.0.5") << "no proxies configured";
}

TEST(ClientAddressTest, FromATrustedProxyTheClientIsTheRightMostAddressNotItselfTrusted) {
  const TrustedProxies trusted = *TrustedProxies::Parse({"10.0.0.0/8"});
  // The client wrote a made-up first entry; the proxies appended what they heard.
  EXPECT_EQ(ClientAddress("10.0.0.5", "6.6.6.6, 198.51.100.7, 10.1.2.3", trusted), "198.51.100.7");
  EXPECT_EQ(ClientAddress("10.0.0.5", "198.51.100.7", trusted), "198.51.100.7");
  EXPECT_EQ(ClientAddress("10.0.0.5", "10.9.9.9,10.1.1.1", trusted), "10.9.9.9") << "every hop trusted: the first";
  EXPECT_EQ(ClientAddress("10.0.0.5", "", trusted), "10.0.0.5") << "a trusted peer that names no one";
  EXPECT_EQ(ClientAddress("10.0.0.5", "198.51.100.7, garbage", trusted), "10.0.0.5")
      << "a hop that is not an address ends the chain at the proxy that added it";
  EXPECT_EQ(ClientAddress("10.0.0.5", "garbage, 10.2.2.2", trusted), "10.2.2.2");
  EXPECT_EQ(ClientAddress("::ffff:10.0.0.5", " 2001:db8::1 ", trusted), "2001:db8::1");
}

TEST(ClientAddressTest, EveryForwardedForHeaderOfARequestCountsInOrder) {
  const TrustedProxies trusted = *TrustedProxies::Parse({"10.0.0.0/8"});
  HttpRequest req;
  req.peer = "10.0.0.5";
  req.headers = {{"x-forwarded-for", "6.6.6.6"}, {"authorization", "x"}, {"x-forwarded-for", "198.51.100.7, 10.3.3.3"}};
  EXPECT_EQ(ClientAddress(req, trusted), "198.51.100.7");
  req.peer = "198.51.100.99";
  EXPECT_EQ(ClientAddress(req, trusted), "198.51.100.99");
}

// A connection the table can close: it records that it was asked to.
struct FakeConnection : Connection {
  void Evict() override { evicted = true; }
  bool evicted = false;
};

TEST(ConnectionTableTest, APeerAtItsCapWithEveryConnectionBusyIsRefusedWhileOthersAreAdmitted) {
  ConnectionTable table(100, 2);
  std::vector<std::shared_ptr<FakeConnection>> held;
  std::vector<uint64_t> ids;
  for (int i = 0; i < 2; ++i) {
    held.push_back(std::make_shared<FakeConnection>());
    auto id = table.Admit(held.back(), "198.51.100.7");
    ASSERT_TRUE(id.has_value());
    table.SetWaiting(*id, false, false);  // in the middle of a request
    ids.push_back(*id);
  }
  ConnectionTable::Refusal why = ConnectionTable::Refusal::kNone;
  auto third = std::make_shared<FakeConnection>();
  EXPECT_FALSE(table.Admit(third, "198.51.100.7", &why).has_value());
  EXPECT_EQ(why, ConnectionTable::Refusal::kPerPeer);
  EXPECT_TRUE(table.Admit(std::make_shared<FakeConnection>(), "198.51.100.8", &why).has_value()) << "another peer";
  EXPECT_TRUE(table.Admit(std::make_shared<FakeConnection>(), "", &why).has_value()) << "an exempt peer";
  ConnectionStats s = table.Stats();
  EXPECT_EQ(s.refused_per_peer, 1u);
  EXPECT_EQ(s.refused, 0u);
  EXPECT_EQ(s.cap_per_peer, 2u);
  // One of the peer's connections closes: it may open another.
  table.Remove(ids[0]);
  EXPECT_TRUE(table.Admit(third, "198.51.100.7").has_value());
  EXPECT_FALSE(held[1]->evicted);
}

TEST(ConnectionTableTest, APeerAtItsCapTradesItsOwnIdleConnectionNeverAnotherPeers) {
  ConnectionTable table(100, 2);
  auto other = std::make_shared<FakeConnection>();
  ASSERT_TRUE(table.Admit(other, "198.51.100.8").has_value());  // idle, and the oldest
  auto busy = std::make_shared<FakeConnection>(), idle = std::make_shared<FakeConnection>();
  table.SetWaiting(*table.Admit(busy, "198.51.100.7"), false, false);
  ASSERT_TRUE(table.Admit(idle, "198.51.100.7").has_value());
  EXPECT_TRUE(table.Admit(std::make_shared<FakeConnection>(), "198.51.100.7").has_value());
  EXPECT_TRUE(idle->evicted);
  EXPECT_FALSE(busy->evicted);
  EXPECT_FALSE(other->evicted);
  EXPECT_EQ(table.Stats().open, 3u);
}

TEST(ConnectionTableTest, WithoutAPerPeerCapOnePeerMayHoldTheWholeBudget) {
  ConnectionTable table(3);
  std::vector<std::shared_ptr<FakeConnection>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(std::make_shared<FakeConnection>());
    table.SetWaiting(*table.Admit(held.back(), "198.51.100.7"), false, false);
  }
  ConnectionTable::Refusal why = ConnectionTable::Refusal::kNone;
  EXPECT_FALSE(table.Admit(std::make_shared<FakeConnection>(), "198.51.100.9", &why).has_value());
  EXPECT_EQ(why, ConnectionTable::Refusal::kTotal);
  EXPECT_EQ(table.Stats().refused, 1u);
}

TEST(LimitSettingsTest, TheServersLimitsAreReadAndABadOneIsRefusedByName) {
  auto c = Config::FromTomlString(
      "[server]\nmax_in_flight = 16\nmax_connections_per_peer = 8\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server.max_in_flight, 16);
  EXPECT_EQ(c->server.max_connections_per_peer, 8);
  EXPECT_EQ(c->server.trusted_proxies, (std::vector<std::string>{"10.0.0.0/8", "::1"}));
  EXPECT_TRUE(Config::FromTomlString("[server]\ntrusted_proxies = []\n").ok());
  auto message = [](const std::string& toml) {
    auto bad = Config::FromTomlString(toml);
    return bad.ok() ? std::string("accepted") : std::string(bad.status().message());
  };
  EXPECT_NE(message("[server]\ntrusted_proxies = [\"10.0.0.0/40\"]\n").find("server.trusted_proxies: '10.0.0.0/40'"),
            std::string::npos);
  EXPECT_NE(message("[server]\ntrusted_proxies = \"10.0.0.1\"\n").find("an array of strings"), std::string::npos);
  EXPECT_NE(message("[server]\ntrusted_proxies = [1]\n").find("an array of strings"), std::string::npos);
  EXPECT_NE(message("[server]\nmax_in_flight = -1\n").find("server.max_in_flight"), std::string::npos);
  EXPECT_NE(message("[server]\nmax_connections_per_peer = -1\n").find("server.max_connections_per_peer"),
            std::string::npos);
}

// A component whose admin route waits until the test lets it answer: a
// request held in flight.
class HeldRoute : public Component {
 public:
  std::string_view name() const override { return "held"; }
  std::vector<AdminRoute> Routes() override {
    AdminRoute r;
    r.method = "GET";
    r.pattern = "/admin/held";
    r.name = "held";
    r.handle = [this](const AdminRequest&) -> absl::StatusOr<AdminReply> {
      entered.set_value();
      release.wait();
      return AdminReply{200, "{}"};
    };
    return {r};
  }
  std::promise<void> entered;
  std::shared_future<void> release;
};

HttpResponse Get(ApiRoutes& routes, const std::string& path, const std::string& authorization = "") {
  HttpRequest req;
  req.method = "GET";
  req.path = path;
  if (!authorization.empty()) req.headers.emplace_back("authorization", authorization);
  return routes.Handle(req);
}

std::string HeaderOf(const HttpResponse& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return "";
}

TEST(InFlightTest, PastMaxInFlightARequestGets503OverloadedWhileHealthStillAnswers) {
  ServerOptions server;
  server.max_in_flight = 1;
  Metrics metrics;
  HeldRoute held;
  std::promise<void> release;
  held.release = release.get_future().share();
  ApiRoutes routes(ApiDeps{&server, nullptr, nullptr, nullptr, &metrics, nullptr, {&held}, nullptr, nullptr});
  routes.SetReady(true);
  std::future<HttpResponse> first = std::async(std::launch::async, [&] { return Get(routes, "/admin/held"); });
  held.entered.get_future().wait();
  const HttpResponse second = Get(routes, "/metrics");
  EXPECT_EQ(second.status, 503);
  EXPECT_NE(second.body.find("\"overloaded\""), std::string::npos) << second.body;
  EXPECT_EQ(HeaderOf(second, "Retry-After"), "1");
  EXPECT_EQ(Get(routes, "/healthz").status, 200);
  release.set_value();
  EXPECT_EQ(first.get().status, 200);
  const HttpResponse page = Get(routes, "/metrics");
  ASSERT_EQ(page.status, 200) << "the held request is done: room again";
  EXPECT_NE(page.body.find("affinity_http_in_flight{field=\"max\"} 1"), std::string::npos) << page.body;
  EXPECT_NE(page.body.find("affinity_http_in_flight{field=\"overloaded\"} 1"), std::string::npos);
}

TEST(RateLimitRouteTest, AKeyOverItsRateGets429WithRetryAfterAndIsCountedByName) {
  const std::string key = *NewApiKey();
  auto config = Config::FromTomlString("[auth]\nkeys = [ " +
                                       KeyConfigLine("ops", key, ScopeBit(Scope::kAdmin), 0.001) + " ]\n");
  ASSERT_TRUE(config.ok()) << config.status();
  Keyring keyring(config->auth);
  Metrics metrics;
  ApiRoutes routes(ApiDeps{&config->server, nullptr, nullptr, nullptr, &metrics, nullptr, {}, nullptr, &keyring});
  EXPECT_EQ(Get(routes, "/admin/stats", "Bearer " + key).status, 200);
  const HttpResponse limited = Get(routes, "/metrics", "Bearer " + key);
  EXPECT_EQ(limited.status, 429);
  EXPECT_NE(limited.body.find("\"rate_limited\""), std::string::npos) << limited.body;
  EXPECT_EQ(limited.body.find(key), std::string::npos);
  EXPECT_EQ(HeaderOf(limited, "Retry-After"), "1000");
  EXPECT_EQ(Get(routes, "/healthz").status, 200) << "public routes take no token";
}

}  // namespace
}  // namespace affinity
