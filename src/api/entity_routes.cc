// The entity routes of the API (docs/openapi.yaml): upsert, listing, read,
// partial update, delete, and the item-to-item list of one entity.
#include <map>

#include "api/requests.h"
#include "api/route_util.h"
#include "api/routes.h"
#include "base/json_writer.h"
#include "base/strings.h"
#include "query/response_json.h"

namespace affinity {
namespace {

constexpr int64_t kDefaultListLimit = 100, kMaxListLimit = 1000;
constexpr int64_t kDefaultSimilarK = 20, kMaxSimilarK = 500;

void WriteEntityJson(const EntityRecord& r, const EntityRegistry& registry, JsonWriter& w) {
  w.BeginObject().Key("id").String(r.ext_id).Key("kind").String(KindName(r.ref.kind()));
  if (r.creator.valid()) w.Key("creator_id").String(registry.ExtId(r.creator));
  if (!r.cohort.empty()) w.Key("cohort").String(r.cohort);
  w.Key("labels").BeginArray();
  for (const auto& label : r.labels) w.String(label);
  w.EndArray();
  if (r.expires_at > 0) w.Key("expires_at").Int(r.expires_at);
  w.Key("attributes").Raw(r.attributes.empty() ? "{}" : r.attributes);
  w.EndObject();
}

// The record as an upsert would give it (what a PATCH starts from).
RawEntity AsRaw(const EntityRecord& r, const EntityRegistry& registry) {
  RawEntity raw;
  raw.id = r.ext_id;
  raw.kind = std::string(KindName(r.ref.kind()));
  if (r.creator.valid()) raw.creator_id = registry.ExtId(r.creator);
  raw.cohort = r.cohort;
  raw.attributes = r.attributes;
  raw.labels = r.labels;
  if (r.expires_at > 0) raw.expires_at = r.expires_at;
  return raw;
}

// An integer URL parameter from 1 to `max` (default when absent), or a 422 naming it.
std::optional<HttpResponse> IntParam(const std::map<std::string, std::string>& params, const std::string& name,
                                     int64_t def, int64_t max, int64_t* out) {
  *out = def;
  auto it = params.find(name);
  if (it == params.end()) return std::nullopt;
  auto n = ParseInt64(it->second);
  if (!n || *n < 1 || *n > max)
    return ErrorResponse(422, "invalid",
                         name + " must be an integer from 1 to " + std::to_string(max) + ", not '" + it->second + "'");
  *out = *n;
  return std::nullopt;
}

}  // namespace

HttpResponse ApiRoutes::Entities(const HttpRequest& req) {
  std::vector<RawEntity> entities;
  std::optional<std::string> body_key;
  if (RequestError e = ParseEntitiesRequest(req.body, &entities, &body_key); !e.ok())
    return ErrorResponse(e.status, e.code, e.message);
  JsonWriter w;
  w.BeginObject().Key("upserted").Uint(entities.size()).EndObject();
  return Idempotent(req, body_key, "entities", HttpResponse(200, w.Release()), [&](IdempotencyRecord* key) {
    return d_.ingestor->UpsertEntities(entities, {"entities"}, key).status();
  });
}

HttpResponse ApiRoutes::ListEntities(const std::string& query) {
  std::map<std::string, std::string> params;
  if (auto bad = QueryParams(query, {"kind", "limit", "cursor", "label"}, &params)) return *bad;
  auto kind_it = params.find("kind");
  if (kind_it == params.end()) return ErrorResponse(422, "invalid", "kind is required: user, creator or item");
  const auto kind = ParseKind(kind_it->second);
  if (!kind || kind_it->second.back() == 's')
    return ErrorResponse(422, "invalid", "kind must be user, creator or item, not '" + kind_it->second + "'");
  int64_t limit = 0;
  if (auto bad = IntParam(params, "limit", kDefaultListLimit, kMaxListLimit, &limit)) return *bad;
  // A cursor is "<kind>:<dense id>": a position in the kind's dense-id order.
  DenseId from = 0;
  if (auto it = params.find("cursor"); it != params.end()) {
    const std::string& c = it->second;
    const size_t colon = c.find(':');
    const auto pos = colon == std::string::npos ? std::nullopt : ParseInt64(std::string_view(c).substr(colon + 1));
    if (!pos || *pos < 0 || *pos > int64_t(d_.catalog->registry().Count(*kind)))
      return ErrorResponse(422, "invalid", "cursor '" + c + "' is not one this listing gave; start without a cursor");
    if (c.substr(0, colon) != KindName(*kind))
      return ErrorResponse(422, "invalid", "cursor '" + c + "' pages through kind " + c.substr(0, colon) + ", not " +
                                               std::string(KindName(*kind)));
    from = DenseId(*pos);
  }
  std::string label;
  if (auto it = params.find("label"); it != params.end()) {
    if (it->second.empty()) return ErrorResponse(422, "invalid", "label must not be empty");
    label = it->second;
  }
  const EntityPage page = d_.catalog->List(*kind, from, size_t(limit), label);
  JsonWriter w;
  w.BeginObject().Key("entities").BeginArray();
  for (const auto& e : page.entities) WriteEntityJson(*e, d_.catalog->registry(), w);
  w.EndArray().Key("next_cursor");
  if (page.next) w.String(std::string(KindName(*kind)) + ":" + std::to_string(*page.next)); else w.Null();
  w.EndObject();
  return {200, w.Release()};
}

HttpResponse ApiRoutes::GetEntity(const std::string& id) {
  auto e = d_.catalog->Entity(id);
  if (!e.ok()) return FromStatus(e.status());
  JsonWriter w;
  WriteEntityJson(**e, d_.catalog->registry(), w);
  return {200, w.Release()};
}

HttpResponse ApiRoutes::PatchEntity(const std::string& id, const std::string& body) {
  // The merge runs under the registry's write lock: nothing lands between the
  // read of the current record and the write of the patched one.
  RequestError refused;
  auto merge = [&](const EntityRecord& current) -> absl::StatusOr<RawEntity> {
    RawEntity patched;
    refused = ParseEntityPatch(body, AsRaw(current, d_.catalog->registry()), &patched);
    if (!refused.ok()) return absl::InvalidArgumentError(refused.message);
    return patched;
  };
  if (auto st = d_.ingestor->PatchEntity(id, merge); !st.ok())
    return refused.ok() ? FromStatus(st) : ErrorResponse(refused.status, refused.code, refused.message);
  return GetEntity(id);
}

HttpResponse ApiRoutes::DeleteEntity(const std::string& id) {
  if (auto s = d_.ingestor->DeleteEntity(id); !s.ok()) return FromStatus(s);
  JsonWriter w;
  w.BeginObject().Key("deleted").String(id).EndObject();
  return {200, w.Release()};
}

HttpResponse ApiRoutes::Similar(const std::string& id, const std::string& query) {
  std::map<std::string, std::string> params;
  if (auto bad = QueryParams(query, {"k"}, &params)) return *bad;
  int64_t k = 0;
  if (auto bad = IntParam(params, "k", kDefaultSimilarK, kMaxSimilarK, &k)) return *bad;
  auto e = d_.catalog->Entity(id);
  if (!e.ok()) return FromStatus(e.status());
  const EntityRecord& entity = **e;
  if (d_.catalog->registry().Removed(entity.ref))
    return ErrorResponse(404, "not_found", "entity '" + id + "' is removed with its deleted creator");
  // The query pipeline seeded with the entity, for no one in particular: its
  // neighbours by co-engagement, embeddings and walks, explained as any query.
  QueryRequest q;
  q.target = entity.ref.kind();
  q.k = int(k);
  q.seeds = {id};
  q.exclude = {id};
  q.exclude_engaged = false;
  JsonWriter context;
  context.BeginObject().Key("similar_to").String(id).EndObject();
  q.context = context.Release();
  auto r = d_.engine->Query(q);
  if (!r.ok()) return FromStatus(r.status());
  d_.metrics->ObserveQuery(*r);
  JsonWriter w;
  WriteResponseJson(*r, q.explain, ResponseForm::kWire, /*with_inputs=*/false, w);
  return {200, w.Release()};
}

}  // namespace affinity
