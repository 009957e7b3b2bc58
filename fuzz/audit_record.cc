// A stored audit value and the record in it (store/record_codecs.h,
// audit/audit_record.h): each reader refuses what is not a record.
#include "audit/audit_record.h"
#include "fuzz_util.h"
#include "store/record_codecs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace affinity;
  const std::string bytes = fuzz::Text(data, size);
  const auto [written, record] = store_internal::DecodeAudit(bytes);
  (void)written;
  for (std::string_view r : {std::string_view(bytes), record}) {
    (void)ExpandAuditRecord(r);
    (void)ReadLoggedResponse(r);
    (void)ReadServedRecord(r);
  }
  return 0;
}
