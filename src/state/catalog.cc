#include "state/catalog.h"

#include <algorithm>

namespace affinity {

absl::StatusOr<std::shared_ptr<const EntityRecord>> Catalog::Entity(const std::string& id) const {
  auto ref = registry_->Find(id);
  auto info = ref ? registry_->Get(*ref) : nullptr;
  if (!info) return absl::NotFoundError("unknown entity '" + id + "'");
  if (info->deleted) return absl::NotFoundError("entity '" + id + "' was deleted");
  return info;
}

EntityPage Catalog::List(Kind kind, DenseId from, size_t limit, std::string_view label, size_t max_scan) const {
  EntityPage page;
  const DenseId end = registry_->Count(kind);
  const int64_t now = clock_->NowMillis();
  DenseId id = from;
  for (size_t scanned = 0; id < end && page.entities.size() < limit && scanned < max_scan; ++id, ++scanned) {
    const Ref r(kind, id);
    if (!registry_->Recommendable(r, now)) continue;
    auto info = registry_->Get(r);
    if (!info || info->deleted) continue;
    if (!label.empty() && std::find(info->labels.begin(), info->labels.end(), label) == info->labels.end()) continue;
    page.entities.push_back(std::move(info));
  }
  if (id < end) page.next = id;
  return page;
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
  auto events = log_->ReadEvents(offsets);
  if (!events.ok()) return events.status();
  std::vector<ViewerEvent> out;
  out.reserve(events->size());
  for (const Event& e : *events)
    out.push_back({e.offset, e.ts, registry_->ExtId(e.entity), e.action, e.weight, e.context});
  return out;
}

}  // namespace affinity
