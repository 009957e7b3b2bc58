// Access control (shared/CONTRACT.md, Access): API keys with scopes. The
// configuration holds each key's name, SHA-256 (hex), scopes and optional rate;
// a request presents the key as `Authorization: Bearer <key>`, or, on admin
// routes, as the password of HTTP Basic (any user name), so the operator page
// opens in a browser. The key itself is never kept, logged or reported: only
// its name is.
// Thread safety: a Keyring is immutable once built; Authorize is safe for
// concurrent use.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "base/component.h"

namespace affinity {

// One configured key ([auth] keys = [{ name, sha256, scopes, rate_per_s }]).
struct ApiKey {
  std::string name;                  // what logs, metrics and audit records call it
  std::array<uint8_t, 32> sha256{};  // of the key as presented
  uint32_t scopes = 0;               // a bit per Scope (ScopeBit)
  double rate_per_s = 0;             // requests per second the key may make (0: no limit)
};

// [auth]: no keys means access control is off (every route open).
struct AuthOptions {
  std::vector<ApiKey> keys;
  bool enabled() const { return !keys.empty(); }
};

constexpr uint32_t ScopeBit(Scope s) { return 1u << unsigned(s); }
// "query,feedback" -> the scopes' bits; InvalidArgument naming an unknown one.
absl::StatusOr<uint32_t> ParseScopes(const std::vector<std::string>& names);
// The bits' names, comma-separated in Scope order ("query,admin").
std::string ScopeList(uint32_t scopes);
// 64 hex digits -> the digest; InvalidArgument otherwise.
absl::StatusOr<std::array<uint8_t, 32>> ParseSha256Hex(std::string_view hex);
std::string Sha256Hex(std::string_view data);

// What the access step decided for one request.
struct AccessDecision {
  int status = 200;           // 200: allowed; 401: no key or an unknown one; 403: the key lacks the scope
  std::string code, message;  // the error's, when refused
  const ApiKey* key = nullptr;  // the caller's key (null when access control is off or none was presented)
  bool challenge_basic = false;  // a 401 that should offer HTTP Basic (`WWW-Authenticate: Basic`)
};

class Keyring {
 public:
  explicit Keyring(AuthOptions options) : options_(std::move(options)) {}
  bool enabled() const { return options_.enabled(); }
  // The key the `Authorization` header presents, or null: `Bearer <key>`, or
  // `Basic <base64(user:key)>` when `basic` is allowed. Each configured key's
  // digest is compared in constant time.
  const ApiKey* Authenticate(std::string_view authorization, bool basic) const;
  // Whether a request with `authorization` may call a route of `scope`
  // (`admin_extra`: it also asks for something only admin keys may, such as a
  // forced arm). Public routes, and every route while access control is off,
  // are allowed.
  AccessDecision Authorize(std::string_view authorization, Scope scope, bool admin_extra = false) const;
  const std::vector<ApiKey>& keys() const { return options_.keys; }

 private:
  AuthOptions options_;
};

// A fresh key (`affinity keys new`): "affk_" and 43 URL-safe base64 characters
// of 32 random bytes (the prefix lets secret scanners recognise a leaked one).
absl::StatusOr<std::string> NewApiKey();
// Its configuration line: { name = "...", sha256 = "...", scopes = [...] }.
std::string KeyConfigLine(const std::string& name, std::string_view key, uint32_t scopes, double rate_per_s);

}  // namespace affinity
