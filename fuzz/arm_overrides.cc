// An experiment's arm overrides applied to the serving settings
// (ServingWithOverrides through a create body, as the catalogue applies them).
#include "base/config.h"
#include "experiments/experiment.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace affinity;
  static const ServingOptions base;
  auto e = ParseExperiment(fuzz::Text(data, size));
  if (!e.ok()) return 0;
  for (const ExperimentArm& arm : e->arms) (void)ServingWithOverrides(base, arm.overrides);
  return 0;
}
