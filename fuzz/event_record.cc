// An event as the log stores it (events/event.h, store/record_codecs.h): any
// bytes decode or are refused; what decodes encodes and decodes again.
#include "events/event.h"
#include "fuzz_util.h"
#include "store/record_codecs.h"
#include "store/store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace affinity;
  const std::string bytes = fuzz::Text(data, size);
  (void)store_internal::EventTime(bytes);
  (void)DecodeCounters(bytes);
  Event e;
  if (DecodeEvent(bytes, &e)) {
    Event again;
    fuzz::Require(DecodeEvent(EncodeEvent(e), &again), "a decoded event encodes to one that decodes");
  }
  return 0;
}
