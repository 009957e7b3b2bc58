// The access step a request meets before its handler (access/access.h): the
// Authorization header parsed, the key hashed and compared with every
// configured digest. Three keys configured, as a small deployment has.
#include <benchmark/benchmark.h>

#include "access/access.h"

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
  std::string plain = "ops:" + keys.ops, b64(4 * ((plain.size() + 2) / 3), '\0');
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t o = 0;
  for (size_t i = 0; i < plain.size(); i += 3) {
    uint32_t n = uint32_t(uint8_t(plain[i])) << 16;
    if (i + 1 < plain.size()) n |= uint32_t(uint8_t(plain[i + 1])) << 8;
    if (i + 2 < plain.size()) n |= uint8_t(plain[i + 2]);
    b64[o++] = kAlphabet[n >> 18 & 63];
    b64[o++] = kAlphabet[n >> 12 & 63];
    b64[o++] = i + 1 < plain.size() ? kAlphabet[n >> 6 & 63] : '=';
    b64[o++] = i + 2 < plain.size() ? kAlphabet[n & 63] : '=';
  }
  const std::string header = "Basic " + b64;
  for (auto _ : state) benchmark::DoNotOptimize(keys.keyring.Authorize(header, Scope::kAdmin));
}
BENCHMARK(BM_AuthorizeBasic);

}  // namespace
}  // namespace affinity
