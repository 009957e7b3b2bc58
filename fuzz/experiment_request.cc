// POST /admin/experiments' body and the stored form it is written as
// (experiments/experiment.h): what is accepted reads back as itself.
#include "experiments/experiment.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace affinity;
  const std::string body = fuzz::Text(data, size);
  auto e = ParseExperiment(body);
  if (e.ok()) {
    const std::string stored = ExperimentJson(*e);
    auto back = ParseStoredExperiment(stored);
    fuzz::Require(back.ok(), "an accepted experiment reads back", std::string(back.status().message()));
    fuzz::Require(ExperimentJson(*back) == stored, "an experiment reads back as itself", stored);
  }
  (void)ParseStoredExperiment(body);
  return 0;
}
