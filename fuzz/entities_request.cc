// POST /affinity/entities' body, and a PATCH of an entity (api/requests.h).
#include "api/requests.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace affinity;
  const std::string body = fuzz::Text(data, size);
  std::vector<RawEntity> entities;
  std::optional<std::string> key;
  RequestError e = ParseEntitiesRequest(body, &entities, &key);
  fuzz::Require(e.ok() || (e.status >= 400 && e.status < 500 && !e.message.empty()), "a refusal is a 4xx with a message",
                e.message);
  RawEntity current{"i1", "item", "c1", "new", R"({"name":"A","tone":"warm"})"};
  RawEntity patched;
  e = ParseEntityPatch(body, current, &patched);
  fuzz::Require(e.ok() || (e.status >= 400 && e.status < 500 && !e.message.empty()), "a refused patch is a 4xx",
                e.message);
  if (e.ok()) fuzz::Require(patched.id == "i1" && patched.kind == "item", "a patch keeps the id and kind");
  return 0;
}
