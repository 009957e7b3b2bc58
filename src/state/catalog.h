// Read views of the catalogue and the feedback log for the API:
// GET /affinity/entities/{id}, GET /affinity/entities?kind=... (pages of the
// live entities of a kind) and GET /affinity/viewers/{id}/events.
// Thread safety: safe for concurrent use (the registry and the store are).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/clock.h"
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

// One page of a kind's live entities, in dense-id order.
struct EntityPage {
  std::vector<std::shared_ptr<const EntityRecord>> entities;
  // Where the next page starts (the dense id after the last one looked at), or
  // nullopt when no entity of the kind is left.
  std::optional<DenseId> next;
};

class Catalog {
 public:
  // `clock` says when an entity has expired (listing).
  // `log`: where a viewer's feedback is read back from.
  Catalog(const EventLog* log, const EntityRegistry* registry, const LiveState* live,
          const Clock* clock = SystemClock::Default())
      : log_(log), registry_(registry), live_(live), clock_(clock) {}
  // NotFound for an unknown or deleted entity.
  absl::StatusOr<std::shared_ptr<const EntityRecord>> Entity(const std::string& id) const;
  // The viewer's newest feedback (at most ViewerState::kMaxFeedback), newest
  // first (NotFound for an unknown viewer).
  absl::StatusOr<std::vector<ViewerEvent>> RecentEvents(const std::string& viewer_id, size_t limit) const;
  // Up to `limit` live entities of `kind` (recommendable now: not deleted, not
  // expired, not an item of a deleted creator), carrying `label` when it is
  // not empty, from dense id `from` on. Dense ids only grow, so pages walk a
  // stable order: each live entity comes once, and ones added while a client
  // pages come at the end. A page looks at most `max_scan` ids, so a rare
  // label may give short (even empty) pages before the end.
  EntityPage List(Kind kind, DenseId from, size_t limit, std::string_view label, size_t max_scan = 100000) const;
  const EntityRegistry& registry() const { return *registry_; }

 private:
  const EventLog* log_;
  const EntityRegistry* registry_;
  const LiveState* live_;
  const Clock* clock_;
};

}  // namespace affinity
