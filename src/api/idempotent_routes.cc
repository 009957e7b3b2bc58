// Exactly-once batch writes (docs/openapi.yaml, "Idempotency-Key"): a POST of
// /affinity/feedback or /affinity/entities with a key is applied once; a retry
// within the window (server.idempotency_window_seconds) gets the first
// response again with Idempotent-Replayed: true, a different request with the
// same key 422 idempotency_key_reused, and a request whose key is being
// applied right now 409 idempotency_key_in_flight with Retry-After (it is not
// made to wait). A refused write (422, 507, ...) stores nothing, so its retry
// is handled afresh. Requests without a key are written as before.
#include <string>

#include "api/route_util.h"
#include "api/routes.h"
#include "state/idempotency_keys.h"

namespace affinity {
namespace {

constexpr const char* kHeader = "idempotency-key";

// The request's key: the Idempotency-Key header or the body's idempotency_key
// (both may be given if they agree). A 422 when they differ or the key breaks
// its rules; *key stays empty when none is given.
std::optional<HttpResponse> RequestKey(const HttpRequest& req, const std::optional<std::string>& body_key,
                                       std::optional<std::string>* key) {
  for (const auto& [name, value] : req.headers) {
    if (name != kHeader) continue;
    if (*key && **key != value)
      return ErrorResponse(422, "invalid", "the Idempotency-Key header is given twice with different values");
    *key = value;
  }
  if (body_key) {
    if (*key && **key != *body_key)
      return ErrorResponse(422, "invalid",
                           "the Idempotency-Key header and the body's idempotency_key differ: give one, or the same");
    *key = body_key;
  }
  if (!*key) return std::nullopt;
  if (absl::Status s = IdempotencyKeys::CheckKey(**key); !s.ok())
    return ErrorResponse(422, "invalid", "Idempotency-Key: " + std::string(s.message()));
  return std::nullopt;
}

}  // namespace

HttpResponse ApiRoutes::Idempotent(const HttpRequest& req, const std::optional<std::string>& body_key,
                                   const std::string& route, HttpResponse answer, const KeyedWrite& write) {
  std::optional<std::string> key;
  if (auto bad = RequestKey(req, body_key, &key)) return *bad;
  auto written = [&](IdempotencyRecord* record) {
    if (record) record->status = answer.status, record->body = answer.body;
    const absl::Status s = write(record);
    return s.ok() ? answer : FromStatus(s);
  };
  if (!key) return written(nullptr);
  auto fingerprint = IdempotencyKeys::Fingerprint(req.method, req.path, req.body);
  if (!fingerprint.ok()) return FromStatus(fingerprint.status());
  auto begun = keys_.Begin(*key, *fingerprint);
  if (!begun.ok()) return FromStatus(begun.status());
  switch (begun->outcome) {
    case IdempotencyKeys::Outcome::kFirst:
      return written(&begun->record);  // the claim is released once the write (and its record) is stored
    case IdempotencyKeys::Outcome::kReplay: {
      d_.metrics->AddIdempotentReplay(route);
      HttpResponse r(begun->record.status, begun->record.body);
      r.headers.emplace_back("Idempotent-Replayed", "true");
      return r;
    }
    case IdempotencyKeys::Outcome::kReused:
      return ErrorResponse(422, "idempotency_key_reused",
                           "Idempotency-Key '" + *key +
                               "' was already used for a different request (another body or route) within the "
                               "idempotency window; send a new key with a new request");
    case IdempotencyKeys::Outcome::kInFlight: {
      HttpResponse r = ErrorResponse(409, "idempotency_key_in_flight",
                                     "a request with Idempotency-Key '" + *key +
                                         "' is being applied now; retry it after Retry-After seconds to get its answer");
      r.headers.emplace_back("Retry-After", "1");
      return r;
    }
  }
  return ErrorResponse(500, "internal", "unknown idempotency outcome");
}

}  // namespace affinity
