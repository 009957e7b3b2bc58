// The configuration file's reader (Config::FromTomlString): any text is a
// configuration or an error, never a crash.
#include "base/config.h"
#include "fuzz_util.h"
#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace affinity;
  auto c = Config::FromTomlString(fuzz::Text(data, size));
  if (!c.ok()) fuzz::Require(!c.status().message().empty(), "a refused configuration says why");
  return 0;
}
