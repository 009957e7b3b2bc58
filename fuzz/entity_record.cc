// An entity record and an idempotency record as the store keeps them
// (store/record_codecs.h). The first byte splits the input into key and value.
#include "fuzz_util.h"
#include "store/record_codecs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace affinity;
  if (size == 0) return 0;
  const std::string rest = fuzz::Text(data + 1, size - 1);
  const size_t split = std::min<size_t>(data[0] % 24, rest.size());
  const std::string_view key(rest.data(), split), value(rest.data() + split, rest.size() - split);
  EntityRecord e;
  if (store_internal::DecodeEntity(key, value, &e)) {
    EntityRecord again;
    fuzz::Require(store_internal::DecodeEntity(key, store_internal::EncodeEntity(e), &again),
                  "a decoded entity encodes to one that decodes");
  }
  IdempotencyRecord r;
  (void)store_internal::DecodeIdempotency(key, value, &r);
  (void)store_internal::IdempotencyTime(value);
  return 0;
}
