// The access step a request meets before its handler (access/access.h): the
// Authorization header parsed, the key hashed and compared with every
// configured digest; then the key's token bucket (access/rate_limiter.h).
// Three keys configured, as a small deployment has.
#include <benchmark/benchmark.h>
#include <openssl/evp.h>

#include <chrono>

#include "access/access.h"
#include "access/rate_limiter.h"

namespace affinity {
namespace {

struct Keys {
  std::string web = *NewApiKey(), ops = *NewApiKey(), feed = *NewApiKey();
  Keyring keyring = [this] {
    AuthOptions o;
    int i = 0;
    for (const std::string* k : {&web, &ops, &feed}) {
      ApiKey key;
      key.name = "k" + std::to_string(i++);
      key.sha256 = *ParseSha256Hex(Sha256Hex(*k));
      key.scopes = ScopeBit(Scope::kQuery) | ScopeBit(Scope::kAdmin);
      key.rate_per_s = 1e9;  // high enough that the bench is never refused: every take is a compare-and-swap
      o.keys.push_back(key);
    }
    return Keyring(o);
  }();
};

void BM_AuthorizeBearer(benchmark::State& state) {
  static const Keys keys;
  const std::string header = "Bearer " + keys.feed;
  for (auto _ : state) benchmark::DoNotOptimize(keys.keyring.Authorize(header, Scope::kQuery));
}
BENCHMARK(BM_AuthorizeBearer);

void BM_AuthorizeUnknownKey(benchmark::State& state) {
  static const Keys keys;
  const std::string header = "Bearer affk_not_a_key_this_server_knows_about_at_all_0000";
  for (auto _ : state) benchmark::DoNotOptimize(keys.keyring.Authorize(header, Scope::kQuery));
}
BENCHMARK(BM_AuthorizeUnknownKey);

void BM_AuthorizeBasic(benchmark::State& state) {
  static const Keys keys;
  // "ops:" + key in base64, as a browser sends it on the operator page.
  const std::string plain = "ops:" + keys.ops;
  std::string b64(4 * ((plain.size() + 2) / 3) + 1, '\0');
  b64.resize(size_t(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()),
                                    reinterpret_cast<const unsigned char*>(plain.data()), int(plain.size()))));
  const std::string header = "Basic " + b64;
  for (auto _ : state) benchmark::DoNotOptimize(keys.keyring.Authorize(header, Scope::kAdmin));
}
BENCHMARK(BM_AuthorizeBasic);

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The bucket step alone: the clock read and the compare-and-swap.
void BM_RateLimitTake(benchmark::State& state) {
  static const Keys keys;
  static RateLimiter limiter(keys.keyring.keys());
  const ApiKey& key = keys.keyring.keys()[2];
  for (auto _ : state) benchmark::DoNotOptimize(limiter.Take(key, NowNs()));
}
BENCHMARK(BM_RateLimitTake)->ThreadRange(1, 2);

// What a request with a Bearer key pays in all: authorize, then take a token.
void BM_AuthorizeAndTake(benchmark::State& state) {
  static const Keys keys;
  static RateLimiter limiter(keys.keyring.keys());
  const std::string header = "Bearer " + keys.feed;
  for (auto _ : state) {
    const AccessDecision d = keys.keyring.Authorize(header, Scope::kQuery);
    benchmark::DoNotOptimize(limiter.Take(*d.key, NowNs()));
  }
}
BENCHMARK(BM_AuthorizeAndTake);

}  // namespace
}  // namespace affinity
