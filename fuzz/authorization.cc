// The Authorization header (access/access.h): any bytes are a Bearer or Basic
// credential, a malformed one, or none; the decision is always one of allowed,
// 401 or 403, and a refusal's message is built from fixed text and the key's
// name only, never from what was presented.
#include "access/access.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace affinity;
  static const Keyring keyring = [] {
    AuthOptions o;
    ApiKey key;
    key.name = "ops";
    key.sha256 = *ParseSha256Hex(Sha256Hex("affk_fuzz"));
    key.scopes = ScopeBit(Scope::kAdmin) | ScopeBit(Scope::kQuery);
    o.keys.push_back(key);
    return Keyring(o);
  }();
  if (size == 0) return 0;
  const Scope scope = Scope(data[0] % 4);
  const std::string header = fuzz::Text(data + 1, size - 1);
  const AccessDecision d = keyring.Authorize(header, scope, data[0] & 4);
  fuzz::Require(d.status == 200 || d.status == 401 || d.status == 403, "a decision is 200, 401 or 403");
  fuzz::Require(d.status != 200 || scope == Scope::kPublic || d.key != nullptr, "an allowed caller has a key");
  if (d.status == 401)
    fuzz::Require(d.message == "this route needs an API key: Authorization: Bearer <key>" ||
                      d.message == "the API key presented is not one this server knows",
                  "a 401 says nothing of what was presented", d.message);
  if (d.status == 403)
    fuzz::Require(d.message.rfind("key 'ops' lacks the ", 0) == 0, "a 403 names the key's name only", d.message);
  return 0;
}
