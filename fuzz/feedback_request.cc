// POST /affinity/feedback's body (api/requests.h).
#include "api/requests.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace affinity;
  std::vector<RawEvent> events;
  std::optional<std::string> key;
  const RequestError e = ParseFeedbackRequest(fuzz::Text(data, size), 100, &events, &key);
  fuzz::Require(e.ok() || (e.status >= 400 && e.status < 500 && !e.message.empty()), "a refusal is a 4xx with a message",
                e.message);
  if (e.ok()) fuzz::Require(events.size() <= 100, "an accepted batch is within its limit");
  return 0;
}
