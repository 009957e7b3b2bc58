// [features.<group>]: one feature group's settings, checked against the
// declared groups by ApplyFeatureSettings (features/feature_registry.h).
#pragma once

#include <cstdint>

namespace affinity {

struct FeatureGroupSettings {
  int64_t ttl_seconds = -1;  // -1: the declared TTL; 0: never stale
  int is_protected = -1;     // -1: as declared; 0 or 1
};

}  // namespace affinity
