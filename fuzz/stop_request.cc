// POST /admin/experiments/{id}/stop's optional body (api/requests.h).
#include "api/requests.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace affinity;
  std::string reason;
  const RequestError e = ParseStopRequest(fuzz::Text(data, size), &reason);
  fuzz::Require(e.ok() || (e.status >= 400 && e.status < 500 && !e.message.empty()), "a refusal is a 4xx with a message",
                e.message);
  return 0;
}
