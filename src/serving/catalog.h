// Read views of the catalogue and the feedback log for the API:
// GET /affinity/entities/{id} and GET /affinity/viewers/{id}/events.
// Thread safety: safe for concurrent use (the registry and the store are).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "events/event.h"
#include "state/live_state.h"
#include "state/registry.h"
#include "store/store.h"

namespace affinity {

// One feedback event as the API shows it.
struct ViewerEvent {
  uint64_t offset = 0;
  int64_t ts = 0;
  std::string entity_id;
  Action action = Action::kClick;
  float weight = 0;
  std::string context;  // raw JSON object or ""
};

class Catalog {
 public:
  Catalog(const Store* store, const EntityRegistry* registry, const LiveState* live)
      : store_(store), registry_(registry), live_(live) {}
  // NotFound for an unknown or deleted entity.
  absl::StatusOr<std::shared_ptr<const EntityRecord>> Entity(const std::string& id) const;
  // The viewer's newest feedback (at most ViewerState::kMaxFeedback), newest
  // first (NotFound for an unknown viewer).
  absl::StatusOr<std::vector<ViewerEvent>> RecentEvents(const std::string& viewer_id, size_t limit) const;
  const EntityRegistry& registry() const { return *registry_; }

 private:
  const Store* store_;
  const EntityRegistry* registry_;
  const LiveState* live_;
};

}  // namespace affinity
