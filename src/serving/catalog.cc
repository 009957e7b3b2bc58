#include "serving/catalog.h"

namespace affinity {

absl::StatusOr<std::shared_ptr<const EntityRecord>> Catalog::Entity(const std::string& id) const {
  auto ref = registry_->Find(id);
  auto info = ref ? registry_->Get(*ref) : nullptr;
  if (!info) return absl::NotFoundError("unknown entity '" + id + "'");
  if (info->deleted) return absl::NotFoundError("entity '" + id + "' was deleted");
  return info;
}

absl::StatusOr<std::vector<ViewerEvent>> Catalog::RecentEvents(const std::string& viewer_id, size_t limit) const {
  auto ref = registry_->Find(viewer_id);
  if (!ref) return absl::NotFoundError("unknown viewer '" + viewer_id + "'");
  if (ref->kind() != Kind::kUser)
    return absl::InvalidArgumentError("'" + viewer_id + "' is " + (ref->kind() == Kind::kItem ? "an " : "a ") +
                                      std::string(KindName(ref->kind())) + ", not a viewer");
  // The live state keeps the offsets of each viewer's newest events; the log
  // holds the events.
  const auto state = live_->Viewer(*ref);
  std::vector<uint64_t> offsets(state->feedback.rbegin(), state->feedback.rend());
  if (offsets.size() > limit) offsets.resize(limit);
  auto events = store_->ReadEvents(offsets);
  if (!events.ok()) return events.status();
  std::vector<ViewerEvent> out;
  out.reserve(events->size());
  for (const Event& e : *events)
    out.push_back({e.offset, e.ts, registry_->ExtId(e.entity), e.action, e.weight, e.context});
  return out;
}

}  // namespace affinity
