// Pages of a query's results (POST /affinity/query with "cursor"). A cursor
// carries what a client needs to ask for the next page and nothing the server
// must remember: the ids already served (so no later page repeats one, however
// live events move scores between pages), when it was issued, and
// fingerprints of the viewer, the target and the rest of the query (so it is
// used only with the query that gave it). It is opaque to clients: base64url
// of a versioned, checksummed record (docs/openapi.yaml). Being self-contained
// it costs the server no memory and outlives a restart; its size is bounded by
// kMaxCursorServed (a list pages through at most that many results).
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/ids.h"
#include "query/query.h"

namespace affinity {

inline constexpr int64_t kCursorLifetimeMs = 10 * 60 * 1000;  // a cursor older than this is refused (410)
inline constexpr size_t kMaxCursorServed = 2000;              // results one list pages through, at most

struct QueryCursor {
  int64_t issued_ms = 0;
  Kind target = Kind::kItem;
  uint64_t viewer_hash = 0;
  uint64_t query_hash = 0;
  std::vector<DenseId> served;  // dense ids of `target` already served, ascending
};

enum class CursorProblem {
  kNone,
  kMalformed,   // not a cursor this server issued (422)
  kExpired,     // older than kCursorLifetimeMs (410)
  kOtherQuery,  // issued for another viewer, target or query (422)
};

struct OpenedCursor {
  CursorProblem problem = CursorProblem::kNone;
  std::string message;  // says what is wrong and what to do
  QueryCursor cursor;
};

// Decodes `text` and checks it against the request it came with at now_ms.
OpenedCursor OpenCursor(std::string_view text, const QueryRequest& req, int64_t now_ms);

// The cursor of the page after `resp` (served: the previous cursor's ids and
// this page's results), or "" when the list has ended: fewer than k results,
// or kMaxCursorServed reached.
std::string NextCursor(const QueryRequest& req, const QueryCursor* previous, const QueryResponse& resp,
                       int64_t now_ms);

}  // namespace affinity
