// POST /affinity/query's body (api/requests.h): any bytes are refused with a
// 4xx or accepted; never a 5xx.
#include "api/requests.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace affinity;
  QueryRequest q;
  const RequestError e = ParseQueryRequest(fuzz::Text(data, size), &q);
  fuzz::Require(e.ok() || (e.status >= 400 && e.status < 500 && !e.message.empty()), "a refusal is a 4xx with a message",
                e.message);
  if (e.ok()) fuzz::Require(!q.viewer_id.empty() && q.k >= 1 && q.k <= 500, "an accepted query is in range");
  return 0;
}
