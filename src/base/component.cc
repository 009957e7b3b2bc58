#include "base/component.h"

namespace affinity {

std::string_view ScopeName(Scope s) {
  switch (s) {
    case Scope::kPublic: return "public";
    case Scope::kQuery: return "query";
    case Scope::kFeedback: return "feedback";
    case Scope::kAdmin: return "admin";
  }
  return "admin";
}

}  // namespace affinity
