#include "state/ingestor.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <unordered_map>

#include "base/status.h"
#include "store/action_codes.h"

namespace affinity {
namespace {

constexpr size_t kMaxLabels = 64;
constexpr int64_t kMaxFutureMs = 24 * 3600 * 1000LL;
// 1990-01-01T00:00:00Z in unix ms. Earlier times are refused as implausible:
// they are almost always a timestamp in seconds (today's is ~1.8e9, which
// read as milliseconds is January 1970) or a stand-in value such as 0 or 1.
constexpr int64_t kMinTsMs = 631'152'000'000LL;

std::string FormatNumber(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

absl::Status Invalid(const Where& where, size_t i, const std::string& msg) {
  return absl::InvalidArgumentError(where.At(i) + ": " + msg);
}

}  // namespace

absl::Status Ingestor::LoadRegistry(const Store& store, EntityRegistry* registry) {
  std::lock_guard<std::mutex> lock(registry->write_mutex());
  std::vector<EntityRecord> all;
  AFF_RETURN_IF_ERROR(store.ScanEntities([&](const EntityRecord& e) { all.push_back(e); }));
  // Published in dense-id order (PublishNew places them by id) so that counts grow without gaps.
  registry->PublishNew(std::move(all));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Ref>> Ingestor::RegisterUsers(const std::vector<std::string>& ids) {
  std::lock_guard<std::mutex> lock(registry_->write_mutex());
  std::vector<Ref> refs;
  std::vector<EntityRecord> fresh;
  for (const auto& id : ids) {
    if (auto r = registry_->Find(id)) {
      refs.push_back(*r);
      continue;
    }
    EntityRecord e;
    e.ref = registry_->Reserve(Kind::kUser);
    e.ext_id = id;
    refs.push_back(e.ref);
    fresh.push_back(std::move(e));
  }
  if (!fresh.empty()) {
    AFF_RETURN_IF_ERROR(store_->PutEntities(fresh));
    for (const auto& e : fresh) registry_->Publish(e);
  }
  return refs;
}

absl::Status Ingestor::ValidateEvents(const std::vector<RawEvent>& raw, const Where& where,
                                      const Lookup& lookup, std::vector<Event>* out,
                                      std::vector<int64_t>* pending,
                                      std::vector<std::string>* new_viewers) const {
  const int64_t now = clock_->NowMillis();
  const int64_t retention_ms = store_->EventRetentionMs();
  out->assign(raw.size(), Event());
  pending->assign(raw.size(), -1);
  std::unordered_map<std::string, size_t> new_index;
  for (size_t i = 0; i < raw.size(); ++i) {
    const RawEvent& r = raw[i];
    Event& e = (*out)[i];
    // The one id rule of every route (state/registry.h): imports meet it too.
    if (auto st = CheckExternalId(r.viewer_id, "viewer_id"); !st.ok()) return Invalid(where, i, std::string(st.message()));
    if (auto st = CheckExternalId(r.entity_id, "entity_id"); !st.ok()) return Invalid(where, i, std::string(st.message()));
    if (r.viewer_id == r.entity_id) return Invalid(where, i, "viewer_id and entity_id are the same");
    // A built-in action, or one the configuration adds: its log code is given in
    // AssignActionCodes once the whole batch is valid (kMaxActionCode marks it here).
    const std::optional<Action> builtin = ParseBuiltinAction(r.action);
    const CustomAction* custom = builtin ? nullptr : weights_.FindCustom(r.action);
    if (!builtin && !custom)
      return Invalid(where, i, "unknown action '" + r.action + "'; expected one of: " + KnownActions());
    e.action = builtin ? *builtin : Action(kMaxActionCode);
    double w = r.weight ? *r.weight : builtin ? DefaultWeight(weights_, *builtin) : custom->weight;
    if (!std::isfinite(w) || std::fabs(w) > 1e6)
      return Invalid(where, i, "weight must be a finite number within +-1e6");
    // An explicit weight's sign must agree with its action: interest (click,
    // like, play, share, comment, follow, a configured action of weight >= 0) is
    // never negative, and a hide, an unfollow or a configured action of negative
    // weight never positive. Impressions carry no sign rule beyond >= 0.
    const bool interest = builtin ? IsPositive(*builtin) || *builtin == Action::kImpression : custom->weight >= 0;
    if (r.weight && interest && w < 0)
      return Invalid(where, i, "weight " + FormatNumber(w) + " is negative, but '" + r.action +
                                   "' expresses interest: give a weight >= 0 (or use hide)");
    if (r.weight && !interest && w > 0)
      return Invalid(where, i, "weight " + FormatNumber(w) + " is positive, but '" + r.action +
                                   "' is negative feedback: give a weight <= 0");
    e.weight = float(w);
    e.ts = r.ts ? *r.ts : now;
    if (e.ts < kMinTsMs)
      return Invalid(where, i, "ts " + std::to_string(e.ts) +
                                   " is before 1990: ts is unix time in milliseconds (a value in seconds needs x 1000)");
    if (e.ts > now + kMaxFutureMs) return Invalid(where, i, "ts is more than a day in the future");
    if (retention_ms > 0 && e.ts < now - retention_ms)
      return Invalid(where, i, "ts is older than events.retention_hours (" + std::to_string(retention_ms / 3'600'000) +
                                   " h): the event would be dropped");
    auto entity = lookup(r.entity_id);
    if (!entity)
      return Invalid(where, i, "unknown entity_id '" + r.entity_id +
                                   "'; register it with POST /affinity/entities first");
    e.entity = *entity;
    if ((e.action == Action::kFollow || e.action == Action::kUnfollow) && e.entity.kind() == Kind::kItem)
      return Invalid(where, i, "follow and unfollow target a user or a creator; '" + r.entity_id + "' is an item");
    if (auto viewer = lookup(r.viewer_id)) {
      if (viewer->kind() != Kind::kUser)
        return Invalid(where, i, "viewer_id '" + r.viewer_id + "' is " +
                                     std::string(viewer->kind() == Kind::kItem ? "an " : "a ") +
                                     std::string(KindName(viewer->kind())) + ", not a user");
      e.viewer = *viewer;
    } else {
      auto [it, inserted] = new_index.emplace(r.viewer_id, new_viewers->size());
      if (inserted) new_viewers->push_back(r.viewer_id);
      (*pending)[i] = int64_t(it->second);
    }
    e.context = r.context;
    e.request_id = RequestIdInContext(e.context);
  }
  return absl::OkStatus();
}

std::string Ingestor::KnownActions() const {
  std::string out = ActionList();
  for (const auto& c : weights_.custom) out += ", " + c.name;
  return out;
}

absl::Status Ingestor::AssignActionCodes(const std::vector<RawEvent>& raw, std::vector<Event>* events) {
  for (size_t i = 0; i < raw.size(); ++i) {
    if (!IsCustom((*events)[i].action)) continue;
    std::lock_guard<std::mutex> lock(codes_mu_);
    auto it = codes_.find(raw[i].action);
    if (it == codes_.end()) {
      AFF_ASSIGN_OR_RETURN(Action code, AssignActionCode(*store_, raw[i].action));
      it = codes_.emplace(raw[i].action, code).first;
    }
    (*events)[i].action = it->second;
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> Ingestor::AddFeedback(const std::vector<RawEvent>& raw, const Where& where,
                                             const IdempotencyRecord* key) {
  if (raw.empty() && !key) return size_t(0);
  std::vector<Event> events;
  std::vector<int64_t> pending;
  std::vector<std::string> new_viewers;
  // 1. Validate everything before touching the store.
  AFF_RETURN_IF_ERROR(ValidateEvents(
      raw, where, [this](const std::string& id) { return registry_->Find(id); }, &events, &pending,
      &new_viewers));
  // 2. Register unseen viewers (durably), then append the events atomically.
  if (!new_viewers.empty()) {
    AFF_ASSIGN_OR_RETURN(std::vector<Ref> refs, RegisterUsers(new_viewers));
    for (size_t i = 0; i < raw.size(); ++i)
      if (pending[i] >= 0) events[i].viewer = refs[size_t(pending[i])];
  }
  AFF_RETURN_IF_ERROR(AssignActionCodes(raw, &events));
  std::vector<FollowChange> follows;
  for (const auto& e : events) {
    if (e.action == Action::kFollow) follows.push_back({e.viewer, e.entity, true, e.ts});
    if (e.action == Action::kUnfollow) follows.push_back({e.viewer, e.entity, false, e.ts});
  }
  AFF_RETURN_IF_ERROR(store_->AppendEvents(events, follows, key));
  if (events.empty()) return size_t(0);
  if (live_) live_->Apply(events);
  if (observer_) observer_(events);
  return events.size();
}

absl::Status Ingestor::ValidateEntities(const std::vector<RawEntity>& raw, const Where& where,
                                        std::vector<EntityRecord>* records) const {
  records->assign(raw.size(), EntityRecord());
  std::unordered_map<std::string, size_t> seen;
  for (size_t i = 0; i < raw.size(); ++i) {
    const RawEntity& r = raw[i];
    if (auto st = CheckExternalId(r.id, "id"); !st.ok()) return Invalid(where, i, std::string(st.message()));
    auto kind = ParseKind(r.kind);
    if (!kind || r.kind.back() == 's') return Invalid(where, i, "kind must be user, creator or item");
    if (!seen.emplace(r.id, i).second) return Invalid(where, i, "id '" + r.id + "' appears twice");
    auto existing = registry_->Find(r.id);
    if (existing && existing->kind() != *kind)
      return Invalid(where, i, "id '" + r.id + "' is already " + (existing->kind() == Kind::kItem ? "an " : "a ") +
                                   std::string(KindName(existing->kind())));
    EntityRecord& rec = (*records)[i];
    rec.ext_id = r.id;
    rec.ref = existing ? *existing : Ref(*kind, kMaxDenseId);
    rec.cohort = r.cohort;
    rec.attributes = r.attributes;
    if (r.labels.size() > kMaxLabels) return Invalid(where, i, "at most 64 labels");
    for (const std::string& label : r.labels)
      if (label.empty() || label.size() > kMaxExternalIdBytes) return Invalid(where, i, "a label is 1 to 256 bytes");
    rec.labels = r.labels;
    if (r.expires_at) {
      if (*r.expires_at < kMinTsMs)
        return Invalid(where, i, "expires_at " + std::to_string(*r.expires_at) +
                                     " is before 1990: it is unix time in milliseconds");
      rec.expires_at = *r.expires_at;
    }
  }
  for (size_t i = 0; i < raw.size(); ++i) {
    const RawEntity& r = raw[i];
    if (r.creator_id.empty()) continue;
    if ((*records)[i].ref.kind() != Kind::kItem) return Invalid(where, i, "only items have a creator_id");
    Ref creator;
    if (auto c = registry_->Find(r.creator_id)) {
      creator = *c;
    } else if (auto it = seen.find(r.creator_id); it != seen.end()) {
      creator = (*records)[it->second].ref;
    } else {
      return Invalid(where, i, "unknown creator_id '" + r.creator_id + "'");
    }
    if (creator.kind() != Kind::kCreator)
      return Invalid(where, i, "creator_id '" + r.creator_id + "' is not a creator");
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> Ingestor::UpsertEntities(const std::vector<RawEntity>& raw, const Where& where,
                                                const IdempotencyRecord* key) {
  if (raw.empty() && !key) return size_t(0);
  std::lock_guard<std::mutex> lock(registry_->write_mutex());
  return UpsertLocked(raw, where, key);
}

absl::Status Ingestor::PatchEntity(const std::string& id, const EntityMerge& merge) {
  std::lock_guard<std::mutex> lock(registry_->write_mutex());
  auto ref = registry_->Find(id);
  auto info = ref ? registry_->Get(*ref) : nullptr;
  if (!info) return absl::NotFoundError("unknown entity '" + id + "'");
  if (info->deleted) return absl::NotFoundError("entity '" + id + "' was deleted");
  AFF_ASSIGN_OR_RETURN(RawEntity patched, merge(*info));
  return UpsertLocked({patched}, {"entity"}).status();
}

absl::StatusOr<size_t> Ingestor::UpsertLocked(const std::vector<RawEntity>& raw, const Where& where,
                                              const IdempotencyRecord* key) {
  std::vector<EntityRecord> records;
  AFF_RETURN_IF_ERROR(ValidateEntities(raw, where, &records));
  std::unordered_map<std::string, Ref> assigned;
  for (auto& rec : records) {
    if (rec.ref.id() == kMaxDenseId) rec.ref = registry_->Reserve(rec.ref.kind());
    assigned[rec.ext_id] = rec.ref;
  }
  for (size_t i = 0; i < raw.size(); ++i)
    if (!raw[i].creator_id.empty()) records[i].creator = assigned.count(raw[i].creator_id)
                                                             ? assigned[raw[i].creator_id]
                                                             : *registry_->Find(raw[i].creator_id);
  AFF_RETURN_IF_ERROR(store_->PutEntities(records, key));
  for (const auto& rec : records) registry_->Publish(rec);
  return records.size();
}

absl::Status Ingestor::DeleteEntity(const std::string& id) {
  std::lock_guard<std::mutex> lock(registry_->write_mutex());
  auto ref = registry_->Find(id);
  if (!ref) return absl::NotFoundError("unknown entity '" + id + "'");
  auto info = registry_->Get(*ref);
  if (!info) return absl::NotFoundError("unknown entity '" + id + "'");
  EntityRecord rec = *info;
  rec.deleted = true;
  AFF_RETURN_IF_ERROR(store_->PutEntities({rec}));
  registry_->Publish(rec);
  return absl::OkStatus();
}

absl::Status Ingestor::Import(const std::vector<RawEntity>& entities, const Where& entities_where,
                              const std::vector<RawEvent>& events, const Where& events_where) {
  std::unordered_map<std::string, Kind> pending_kinds;
  {
    std::lock_guard<std::mutex> lock(registry_->write_mutex());
    std::vector<EntityRecord> records;
    AFF_RETURN_IF_ERROR(ValidateEntities(entities, entities_where, &records));
    for (const auto& rec : records) pending_kinds[rec.ext_id] = rec.ref.kind();
  }
  {
    std::vector<Event> dry;
    std::vector<int64_t> pending;
    std::vector<std::string> new_viewers;
    auto lookup = [&](const std::string& id) -> std::optional<Ref> {
      if (auto it = pending_kinds.find(id); it != pending_kinds.end()) return Ref(it->second, 0);
      return registry_->Find(id);
    };
    AFF_RETURN_IF_ERROR(ValidateEvents(events, events_where, lookup, &dry, &pending, &new_viewers));
  }
  // Everything is valid: write entities, then events (validated again, cheaply).
  AFF_RETURN_IF_ERROR(UpsertEntities(entities, entities_where).status());
  AFF_RETURN_IF_ERROR(AddFeedback(events, events_where).status());
  return absl::OkStatus();
}

}  // namespace affinity
