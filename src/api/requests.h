// The JSON bodies of the API's POST routes, parsed and validated (simdjson):
// every field checked for type and range, and a field the route does not know
// refused by name (with the nearest known one), as the configuration file
// refuses unknown keys. Malformed JSON is a 400; a well-formed body that breaks
// a rule is a 422 naming the field (`events[i].field` inside a batch); a batch
// over the size limit is a 413.
// Thread safety: the functions are pure apart from a thread-local parser.
#pragma once

#include <string>
#include <vector>

#include "serving/query_engine.h"
#include "state/ingestor.h"

namespace affinity {

// Why a body was refused; `status` 0 means it was accepted.
struct RequestError {
  int status = 0;
  std::string code;
  std::string message;
  bool ok() const { return status == 0; }
};

RequestError ParseQueryRequest(const std::string& body, QueryRequest* out);
RequestError ParseFeedbackRequest(const std::string& body, size_t max_events, std::vector<RawEvent>* out);
RequestError ParseEntitiesRequest(const std::string& body, std::vector<RawEntity>* out);
// A 400 unless the body is a JSON object (bodies parsed further elsewhere).
RequestError CheckJsonObject(const std::string& body);
// The optional {"reason":"..."} of POST /admin/experiments/{id}/stop ("" when the body is empty).
RequestError ParseStopRequest(const std::string& body, std::string* reason);

}  // namespace affinity
