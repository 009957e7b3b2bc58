#include "admin/feature_service.h"

#include <algorithm>
#include <cmath>

#include "base/json_writer.h"
#include "state/registry.h"
#include "features/batch_columns.h"
#include "features/feature_settings.h"

namespace affinity {
namespace {

// Past its TTL: values written at ts are masked at now (a group without a TTL never is).
bool Stale(const FeatureGroup& g, int64_t ts, int64_t now) {
  return ts > 0 && g.ttl_seconds > 0 && now - ts > g.ttl_seconds * 1000;
}

// What one entity's record of a group holds before it is written.
struct RecordParts {
  std::vector<double> values;
  std::string text_value;  // the cohort label
  int64_t freshness = 0;
  std::string pairs;  // the pair groups without `with`: the viewer's pairs (a JSON array)
};

// The viewer's tracked pairs (creators, or recently engaged entities), newest
// first, as a JSON array; *freshness the newest, *count how many.
template <class Viewer>
std::string ViewerPairsJson(const Viewer& v, bool creators, const EntityRegistry& registry, int64_t* freshness,
                            size_t* count) {
  struct Pair {
    Ref other;
    int64_t last;
    uint32_t n;
  };
  std::vector<Pair> list;
  if (creators) {
    for (const auto& t : v.creators) list.push_back({t.creator, t.last_ts, t.count});
  } else {
    for (const auto& i : v.recent) {
      auto it = std::find_if(list.begin(), list.end(), [&](const Pair& p) { return p.other == i.entity; });
      if (it == list.end()) list.push_back({i.entity, i.ts, 1});
      else it->last = std::max(it->last, i.ts), it->n++;
    }
  }
  std::sort(list.begin(), list.end(), [](const Pair& a, const Pair& b) { return a.last > b.last; });
  JsonWriter pw;
  pw.BeginArray();
  for (const auto& p : list) {
    pw.BeginObject().Key("with").String(registry.ExtId(p.other));
    pw.Key(creators ? "engagements" : "recent_interactions").Uint(p.n).Key("last_engaged_ms").Int(p.last);
    pw.EndObject();
    *freshness = std::max(*freshness, p.last);
  }
  pw.EndArray();
  *count = list.size();
  return pw.Release();
}

// The record as GET /admin/features/{group}/{entity_id} gives it.
std::string RecordJsonOf(const FeatureGroup& g, const std::string& entity_id, const std::string& with, bool pair_list,
                         const RecordParts& parts, bool stale, std::string provenance) {
  const std::vector<double>& values = parts.values;
  JsonWriter w;
  w.BeginObject().Key("entity_id").String(entity_id).Key("group").String(g.name);
  if (!with.empty()) w.Key("with").String(with);
  w.Key("feature_vector").BeginObject();
  if (g.name == kGroupCohort) {
    w.Key(g.components[0]).String(parts.text_value);
  } else if (pair_list) {
    w.Key("pairs").Int(int64_t(values.empty() ? 0 : values[0]));
  } else {
    for (size_t i = 0; i < values.size() && i < g.components.size(); ++i) {
      w.Key(g.components[i]);
      // Counts and millisecond times exactly; other values at float precision.
      if (values[i] == std::floor(values[i]) && std::fabs(values[i]) < 9e15) w.Int(int64_t(values[i])); else w.Double(values[i]);
    }
  }
  w.EndObject();
  w.Key("freshness_ts");
  if (parts.freshness > 0) w.Int(parts.freshness); else w.Null();
  w.Key("stale").Bool(stale).Key("protected").Bool(g.is_protected);
  w.Key("provenance").Raw(provenance);
  if (!parts.pairs.empty()) w.Key("pairs").Raw(parts.pairs);
  w.EndObject();
  return w.Release();
}

}  // namespace

FeatureService::FeatureService(const EntityRegistry* registry, const LiveState* live, const SnapshotManager* snapshots,
                               const Clock* clock, int default_dim, std::map<std::string, FeatureGroupSettings> settings)
    : registry_(registry),
      live_(live),
      snapshots_(snapshots),
      clock_(clock),
      default_dim_(default_dim),
      settings_(std::move(settings)) {}

std::vector<FeatureGroup> FeatureService::Groups() const {
  auto snap = snapshots_ ? snapshots_->Get() : nullptr;
  std::vector<FeatureGroup> groups = DeclaredFeatureGroups(snap ? snap->dim : default_dim_);
  (void)ApplyFeatureSettings(settings_, &groups);  // checked at start
  return groups;
}

int64_t FeatureService::GroupFreshnessTs(const FeatureGroup& g, const Snapshot* snap) const {
  if (g.source == FeatureSource::kBatch) return snap ? snap->GroupFreshnessMs(g.name) : 0;
  if (g.name == kGroupCohort) return 0;  // the catalogue keeps no write time
  return live_->last_event_ts();
}

std::string FeatureService::ListJson() const {
  auto snap = snapshots_ ? snapshots_->Get() : nullptr;
  const int64_t now = clock_->NowMillis();
  JsonWriter w;
  w.BeginObject().Key("groups").BeginArray();
  for (const FeatureGroup& g : Groups()) {
    w.BeginObject();
    w.Key("name").String(g.name).Key("entity_kind").String(g.entity_kind).Key("source").String(FeatureSourceName(g.source));
    w.Key("features").BeginArray();
    for (const auto& f : g.components) w.String(f);
    w.EndArray();
    w.Key("ttl_seconds").Int(g.ttl_seconds).Key("owner").String(g.owner).Key("description").String(g.description);
    w.Key("protected").Bool(g.is_protected).Key("version").Int(g.version);
    const int64_t ts = GroupFreshnessTs(g, snap.get());
    w.Key("freshness_ts");
    if (ts > 0) w.Int(ts); else w.Null();
    w.Key("stale").Bool(Stale(g, ts, now));
    if (g.source == FeatureSource::kBatch && snap) w.Key("snapshot").String(snap->version);
    w.EndObject();
  }
  w.EndArray().EndObject();
  return w.Release();
}

std::vector<FeatureService::Freshness> FeatureService::FreshnessByGroup() const {
  auto snap = snapshots_ ? snapshots_->Get() : nullptr;
  const int64_t now = clock_->NowMillis();
  std::vector<Freshness> out;
  for (const FeatureGroup& g : Groups()) {
    Freshness f;
    f.group = g.name;
    const int64_t ts = GroupFreshnessTs(g, snap.get());
    f.has_value = ts > 0;
    f.age_seconds = ts > 0 ? std::max(0.0, double(now - ts) / 1000.0) : 0;
    f.stale = Stale(g, ts, now);
    if (g.name != kGroupCohort) out.push_back(f);
  }
  return out;
}

absl::StatusOr<std::string> FeatureService::RecordJson(const std::string& group, const std::string& entity_id,
                                                       const std::string& with) const {
  const std::vector<FeatureGroup> groups = Groups();
  const FeatureGroup* g = FindFeatureGroup(groups, group);
  if (!g) return absl::NotFoundError("no feature group '" + group + "' (GET /admin/features lists them)");
  const bool pair_group = group == kGroupViewerCreator || group == kGroupViewerEntity;
  if (!with.empty() && !pair_group)
    return absl::InvalidArgumentError("'with' reads a pair: only the viewer_creator and viewer_entity groups hold pairs");
  const auto ref = registry_->Find(entity_id);
  if (!ref) return absl::NotFoundError("no entity '" + entity_id + "'");
  const Ref r = *ref;
  auto snap = snapshots_ ? snapshots_->Get() : nullptr;
  const int64_t now = clock_->NowMillis();
  RecordParts parts;
  JsonWriter prov;
  prov.BeginObject().Key("source").String(FeatureSourceName(g->source)).Key("owner").String(g->owner).Key("group_version").Int(g->version);
  // Stream groups: the log offset the live state covers and its checkpoint.
  auto stream_provenance = [&] {
    prov.Key("events_applied").Uint(live_->events_applied()).Key("log_offset").Uint(live_->applied_offset());
    if (!checkpointer_) return;
    const Checkpointer::Status c = checkpointer_->status();
    if (c.last) prov.Key("checkpoint_offset").Uint(c.last->offset).Key("checkpoint_ms").Int(c.last->created_ms);
    prov.Key("restored_from_checkpoint").Bool(c.load.from_checkpoint);
  };
  auto none = [&](const std::string& why) {
    return absl::NotFoundError("feature group '" + group + "' has no record for '" + entity_id + "': " + why);
  };
  if (g->source == FeatureSource::kBatch) {
    if (!snap) return none("no snapshot yet (run `affinity batch`)");
    auto record = BatchGroupRecord(*snap, group, r);
    if (!record.ok()) return none(std::string(record.status().message()));
    parts.values.assign(record->begin(), record->end());
    parts.freshness = snap->GroupFreshnessMs(group);
    prov.Key("snapshot").String(snap->version).Key("watermark_offset").Uint(snap->watermark_offset);
    prov.Key("watermark_ts").Int(snap->watermark_ts).Key("computed").String(snap->GroupProvenance(group));
  } else if (group == kGroupEngagement) {
    const auto c = live_->EntityCounts(r, now);
    parts.values = {live_->Engagement(r, now),          c[0], c[1], c[2], double(live_->FirstEngagedMs(r)),
              double(live_->LastEngagedMs(r)), double(live_->Followers(r))};
    parts.freshness = live_->LastEngagedMs(r);
    stream_provenance();
  } else if (group == kGroupViewerActivity) {
    if (r.kind() != Kind::kUser) return none("only users are viewers");
    auto v = live_->Viewer(r);
    const auto c = live_->ViewerCounts(r, now);
    parts.values = {double(v->events), double(v->last_ts), double(v->follows.size()), double(v->engaged.size()),
              double(v->hidden.size()), c[0], c[1], c[2]};
    parts.freshness = v->last_ts;
    stream_provenance();
  } else if (group == kGroupCreatorActivity) {
    if (r.kind() != Kind::kCreator) return none("it is not a creator");
    const auto c = live_->CreatorCounts(r, now);
    // The last hour's rate against the last day's: a 1 h half-life count
    // holds about 1/ln2 hours of events, a 1 d one 24/ln2.
    const double velocity = c[1] > 0 ? 24.0 * c[0] / c[1] : 0;
    parts.values = {c[0], c[1], c[2], velocity, double(live_->CreatorLastEngagedMs(r))};
    parts.freshness = live_->CreatorLastEngagedMs(r);
    stream_provenance();
  } else if (pair_group) {
    if (r.kind() != Kind::kUser) return none("only users are viewers");
    auto v = live_->Viewer(r);
    stream_provenance();
    const bool creators = group == kGroupViewerCreator;
    if (with.empty()) {  // the viewer's tracked pairs, newest first
      size_t n = 0;
      parts.pairs = ViewerPairsJson(*v, creators, *registry_, &parts.freshness, &n);
      parts.values = {double(n)};
    } else {
      const auto other = registry_->Find(with);
      if (!other) return absl::NotFoundError("no entity '" + with + "'");
      if (creators && other->kind() != Kind::kCreator) return none("'" + with + "' is not a creator");
      int64_t last = 0;
      if (creators) {
        const CreatorTouch* t = v->Creator(*other);
        last = t ? t->last_ts : 0;
        parts.values = {double(t ? t->count : 0), double(last)};
      } else {
        uint32_t n = 0;
        for (const auto& i : v->recent)
          if (i.entity == *other) ++n, last = std::max(last, i.ts);
        parts.values = {double(v->Engaged(*other)), double(n), double(last)};
      }
      parts.values.push_back(last > 0 ? std::max(0.0, double(now - last) / 1000.0) : -1.0);
      parts.freshness = last;
    }
  } else if (group == kGroupCohort) {
    auto info = registry_->Get(r);
    parts.text_value = info ? info->cohort : "";
    prov.Key("written_by").String("POST /affinity/entities");
  }
  prov.EndObject();
  return RecordJsonOf(*g, entity_id, with, pair_group && with.empty(), parts, Stale(*g, parts.freshness, now),
                      prov.Release());
}


void FeatureService::ReportMetrics(MetricsSink& sink) const {
  for (const auto& g : FreshnessByGroup()) {
    if (!g.has_value) continue;
    sink.Gauge("affinity_feature_freshness_age_seconds",
               "Seconds since the feature group's newest value (batch: its snapshot; stream: the "
               "newest applied event)",
               {{"group", g.group}}, g.age_seconds);
    sink.Gauge("affinity_feature_freshness_stale",
               "1 while the feature group is past its TTL (its values are masked at read)", {{"group", g.group}},
               g.stale ? 1 : 0);
  }
}

std::vector<AdminRoute> FeatureService::Routes() {
  AdminRoute list{"GET", "/admin/features", "features"};
  list.handle = [this](const AdminRequest&) -> absl::StatusOr<AdminReply> { return AdminReply{200, ListJson()}; };
  AdminRoute record{"GET", "/admin/features/{group}/{entity_id*}", "features"};
  record.params = {"with"};
  record.handle = [this](const AdminRequest& req) -> absl::StatusOr<AdminReply> {
    const std::string& entity_id = req.args.at("entity_id");
    if (absl::Status bad = CheckExternalId(entity_id, "entity_id (in the path)"); !bad.ok()) return bad;
    auto with = req.params.find("with");
    if (with != req.params.end())
      if (absl::Status bad = CheckExternalId(with->second, "with"); !bad.ok()) return bad;
    auto json = RecordJson(req.args.at("group"), entity_id, with == req.params.end() ? "" : with->second);
    if (!json.ok()) return json.status();
    return AdminReply{200, *std::move(json)};
  };
  return {std::move(list), std::move(record)};
}

}  // namespace affinity
