#include "access/access.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "base/strings.h"

namespace affinity {
namespace {

constexpr Scope kScopes[] = {Scope::kPublic, Scope::kQuery, Scope::kFeedback, Scope::kAdmin};

std::array<uint8_t, 32> Digest(std::string_view data) {
  std::array<uint8_t, 32> out{};
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &n, EVP_sha256(), nullptr);
  return out;
}

// The key in `Basic base64(user:key)`, or "" when it is not one.
std::string BasicPassword(std::string_view credentials) {
  while (!credentials.empty() && credentials.back() == ' ') credentials.remove_suffix(1);
  if (credentials.empty() || credentials.size() % 4 != 0 || credentials.size() > 1024) return "";
  std::string decoded(credentials.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                                reinterpret_cast<const unsigned char*>(credentials.data()), int(credentials.size()));
  // Padding ('=') is one or two characters at the end, and decodes to zero bytes.
  size_t pad = 0;
  while (pad < credentials.size() && credentials[credentials.size() - 1 - pad] == '=') ++pad;
  if (n < 0 || pad > 2 || size_t(n) < pad || credentials.find('=') < credentials.size() - pad) return "";
  decoded.resize(size_t(n) - pad);
  const size_t colon = decoded.find(':');
  return colon == std::string::npos ? "" : decoded.substr(colon + 1);
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  return true;
}

}  // namespace

absl::StatusOr<uint32_t> ParseScopes(const std::vector<std::string>& names) {
  uint32_t bits = 0;
  for (const std::string& name : names) {
    bool found = false;
    for (Scope s : kScopes)
      if (s != Scope::kPublic && ScopeName(s) == name) bits |= ScopeBit(s), found = true;
    if (!found) return absl::InvalidArgumentError("'" + name + "' is not a scope (query, feedback or admin)");
  }
  if (bits == 0) return absl::InvalidArgumentError("a key needs at least one scope (query, feedback or admin)");
  return bits;
}

std::string ScopeList(uint32_t scopes) {
  std::string out;
  for (Scope s : kScopes)
    if (scopes & ScopeBit(s)) absl::StrAppend(&out, out.empty() ? "" : ",", std::string(ScopeName(s)));
  return out;
}

absl::StatusOr<std::array<uint8_t, 32>> ParseSha256Hex(std::string_view hex) {
  std::array<uint8_t, 32> out{};
  if (hex.size() != 64) return absl::InvalidArgumentError("a key's sha256 is 64 hex digits");
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < 32; ++i) {
    const int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return absl::InvalidArgumentError("a key's sha256 is 64 hex digits");
    out[i] = uint8_t(hi << 4 | lo);
  }
  return out;
}

std::string Sha256Hex(std::string_view data) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : Digest(data)) out += kHex[b >> 4], out += kHex[b & 15];
  return out;
}

const ApiKey* Keyring::Authenticate(std::string_view authorization, bool basic) const {
  std::string presented;
  if (StartsWithNoCase(authorization, "bearer ")) {
    presented = std::string(authorization.substr(7));
    while (!presented.empty() && presented.back() == ' ') presented.pop_back();
  } else if (basic && StartsWithNoCase(authorization, "basic ")) {
    presented = BasicPassword(authorization.substr(6));
  }
  if (presented.empty()) return nullptr;
  const std::array<uint8_t, 32> digest = Digest(presented);
  const ApiKey* found = nullptr;
  for (const ApiKey& k : options_.keys)  // every key compared, in constant time each
    if (CRYPTO_memcmp(k.sha256.data(), digest.data(), digest.size()) == 0) found = &k;
  return found;
}

AccessDecision Keyring::Authorize(std::string_view authorization, Scope scope, bool admin_extra) const {
  AccessDecision d;
  if (!enabled() || (scope == Scope::kPublic && !admin_extra)) return d;
  const bool admin_route = scope == Scope::kAdmin;
  d.key = Authenticate(authorization, admin_route);
  if (!d.key) {
    d.status = 401;
    d.code = "unauthorized";
    d.message = authorization.empty() ? "this route needs an API key: Authorization: Bearer <key>"
                                      : "the API key presented is not one this server knows";
    d.challenge_basic = admin_route;
    return d;
  }
  if (!(d.key->scopes & ScopeBit(scope))) {
    d.status = 403;
    d.code = "forbidden";
    d.message = absl::StrCat("key '", d.key->name, "' lacks the ", std::string(ScopeName(scope)), " scope this route needs");
  } else if (admin_extra && !(d.key->scopes & ScopeBit(Scope::kAdmin))) {
    d.status = 403;
    d.code = "forbidden";
    d.message = absl::StrCat("key '", d.key->name, "' lacks the admin scope X-Affinity-Force-Arm needs");
  }
  return d;
}

absl::StatusOr<std::string> NewApiKey() {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) return absl::InternalError("no random bytes for a key");
  unsigned char b64[48];
  const int n = EVP_EncodeBlock(b64, raw, sizeof raw);
  std::string key = "affk_";
  for (int i = 0; i < n; ++i) {
    const char c = char(b64[i]);
    if (c == '=') break;
    key += c == '+' ? '-' : c == '/' ? '_' : c;
  }
  return key;
}

std::string KeyConfigLine(const std::string& name, std::string_view key, uint32_t scopes, double rate_per_s) {
  std::string scope_list;
  for (Scope s : kScopes)
    if (scopes & ScopeBit(s)) absl::StrAppend(&scope_list, scope_list.empty() ? "" : ", ", "\"", std::string(ScopeName(s)), "\"");
  std::string line = absl::StrCat("{ name = \"", name, "\", sha256 = \"", Sha256Hex(key), "\", scopes = [", scope_list, "]");
  if (rate_per_s > 0) absl::StrAppend(&line, ", rate_per_s = ", rate_per_s);
  return line + " }";
}

}  // namespace affinity
