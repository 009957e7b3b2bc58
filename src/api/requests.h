// The JSON bodies of the API's POST routes, parsed and validated (simdjson):
// every field checked for type and range, and a field the route does not know
// refused by name (with the nearest known one), as the configuration file
// refuses unknown keys. Malformed JSON is a 400; a well-formed body that breaks
// a rule is a 422 naming the field (`events[i].field` inside a batch); a batch
// over the size limit is a 413. What no body needs is refused before it is
// read: nesting deeper than kMaxJsonDepth and bytes that are not UTF-8 (400
// naming the limit or the byte), a number out of range (422 naming the
// field), a `context` over kMaxContextBytes (413 naming the limit).
// Thread safety: the functions are pure apart from a thread-local parser.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "serving/query_engine.h"
#include "state/ingestor.h"

namespace affinity {

// Arrays and objects nest at most this deep in a body (the body's own object is 1).
inline constexpr size_t kMaxJsonDepth = 32;
// A query's or an event's `context`, as stored (minified JSON), is at most this long.
inline constexpr size_t kMaxContextBytes = 4096;

// Why a body was refused; `status` 0 means it was accepted.
struct RequestError {
  int status = 0;
  std::string code;
  std::string message;
  bool ok() const { return status == 0; }
};

RequestError ParseQueryRequest(const std::string& body, QueryRequest* out);
// Both batch bodies may carry a top-level "idempotency_key" string (for clients
// that cannot set the Idempotency-Key header): set in *idempotency_key when
// given (a 422 unless a string; the key's own rules are checked by the route).
RequestError ParseFeedbackRequest(const std::string& body, size_t max_events, std::vector<RawEvent>* out,
                                  std::optional<std::string>* idempotency_key = nullptr);
RequestError ParseEntitiesRequest(const std::string& body, std::vector<RawEntity>* out,
                                  std::optional<std::string>* idempotency_key = nullptr);
// The body of PATCH /affinity/entities/{id} applied to the entity's current
// record: the fields it names among name, labels, expires_at, attributes and
// cohort change (null clears one), every other field is kept. `attributes`
// replaces the attributes object but keeps the display name unless it carries
// one (or the patch names `name`). id, kind and creator_id cannot change: a
// 422 names the one that would (given with its current value it is accepted).
RequestError ParseEntityPatch(const std::string& body, const RawEntity& current, RawEntity* out);
// A 400 unless the body is a JSON object (bodies parsed further elsewhere).
RequestError CheckJsonObject(const std::string& body);
// The optional {"reason":"..."} of POST /admin/experiments/{id}/stop ("" when the body is empty).
RequestError ParseStopRequest(const std::string& body, std::string* reason);

}  // namespace affinity
