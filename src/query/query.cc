#include "query/query.h"

namespace affinity {

const char* StageName(Stage s) {
  static const char* kNames[kNumStages] = {"state", "graph", "coengagement", "ann", "walk", "popular", "rank"};
  return kNames[s];
}

}  // namespace affinity
