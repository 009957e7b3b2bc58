#include "api/requests.h"

#include <simdjson.h>

#include <cmath>
#include <initializer_list>

#include "api/json_checks.h"
#include "base/json_writer.h"
#include "base/strings.h"
#include "state/registry.h"

namespace affinity {
namespace {

using simdjson::dom::element;
using simdjson::dom::object;

RequestError Invalid(std::string message) { return {422, "invalid", std::move(message)}; }

// The thread's parser, which refuses nesting deeper than kMaxJsonDepth: sized
// once with that limit, it grows for a longer body later and keeps it.
simdjson::dom::parser& Parser() {
  thread_local simdjson::dom::parser parser;
  thread_local const simdjson::error_code sized =
      parser.allocate(simdjson::dom::MINIMAL_DOCUMENT_CAPACITY, kMaxJsonDepth);
  static_cast<void>(sized);  // unsized (out of memory), the parse sizes it and fails as it can
  return parser;
}

// Parses a JSON object body; a 400 when it is not one (or nests too deep, or
// is not UTF-8). Well-formed JSON that cannot be read unambiguously is a 422:
// a key given twice in one object, a number out of range.
RequestError ParseBody(const std::string& body, object* obj) {
  element doc;
  if (auto e = Parser().parse(body).get(doc)) {
    if (e == simdjson::NUMBER_ERROR || e == simdjson::NUMBER_OUT_OF_RANGE)
      if (auto big = BigIntegerMessage(body)) return Invalid(*big);
    if (e == simdjson::DEPTH_ERROR)
      return {400, "too_deep",
              "request body nests arrays and objects deeper than " + std::to_string(kMaxJsonDepth) + " levels"};
    if (e == simdjson::UTF8_ERROR) return {400, "invalid_utf8", InvalidUtf8Message(body)};
    return {400, "malformed_json", std::string("request body is not valid JSON: ") + simdjson::error_message(e)};
  }
  if (doc.get(*obj)) return {400, "malformed_json", "request body must be a JSON object"};
  if (auto dup = DuplicateKey(doc)) return Invalid(*dup);
  return {};
}

// A 413 naming the limit when a context (minified) is over kMaxContextBytes.
RequestError CheckContextSize(const std::string& context, const std::string& where = "") {
  if (context.size() <= kMaxContextBytes) return {};
  return {413, "payload_too_large",
          where + "context is " + std::to_string(context.size()) + " bytes; at most " +
              std::to_string(kMaxContextBytes) + " bytes of JSON are kept with a request or an event"};
}

// A 422 naming `field` unless `id` is a valid external id (state/registry.h).
RequestError CheckId(std::string_view id, const std::string& field, const std::string& where = "") {
  const absl::Status s = CheckExternalId(id, field);
  return s.ok() ? RequestError{} : Invalid(where + std::string(s.message()));
}

// The text of a JSON number as the client wrote it (for messages).
std::string NumberText(element v) {
  std::string text = simdjson::minify(v);
  return text.size() > 40 ? text.substr(0, 40) + "..." : text;
}

// The first field of `obj` that is not in `known`, as "unknown field 'x'" (with
// the nearest known name), prefixed by `where` ("events[2]: ").
RequestError UnknownField(object obj, std::initializer_list<std::string_view> known, const std::string& where = "") {
  const std::vector<std::string_view> names(known);
  const auto unknown = FirstUnknownKey(obj, names);
  if (!unknown) return {};
  std::string message = where + "unknown field '" + unknown->key + "'";
  if (!unknown->nearest.empty()) message += "; did you mean '" + unknown->nearest + "'?";
  message += "; known fields:";
  for (size_t i = 0; i < names.size(); ++i) message += (i ? ", " : " ") + std::string(names[i]);
  return Invalid(message);
}

// Reads an optional array of strings into `out`; with `ids`, each must be a
// valid external id (named "key[i]" when not).
RequestError StringArray(object obj, const char* key, std::vector<std::string>* out, bool ids = false) {
  element v;
  if (obj[key].get(v)) return {};
  simdjson::dom::array arr;
  if (v.get(arr)) return Invalid(std::string(key) + " must be an array of strings");
  for (auto el : arr) {
    std::string_view s;
    if (el.get(s)) return Invalid(std::string(key) + " must be an array of strings");
    if (ids)
      if (auto err = CheckId(s, std::string(key) + "[" + std::to_string(out->size()) + "]"); !err.ok()) return err;
    out->emplace_back(s);
  }
  return {};
}

// The query's optional knobs after viewer_id, target, k, seeds and exclude.
RequestError QueryKnobs(object obj, QueryRequest* q) {
  element v;
  std::string_view s;
  if (!obj["context"].get(v)) {
    if (!v.is_object()) return Invalid("context must be an object");
    q->context = simdjson::minify(v);
    if (auto err = CheckContextSize(q->context); !err.ok()) return err;
  }
  if (!obj["explain"].get(v)) {
    bool b;
    if (!v.get(b)) q->explain = b ? ExplainMode::kTop : ExplainMode::kNone;
    else if (!v.get(s) && s == "full") q->explain = ExplainMode::kFull;
    else return Invalid("explain must be true, false or \"full\"");
  }
  if (!obj["deadline_ms"].get(v)) {
    int64_t d;
    if (v.get(d) || d < 1 || d > 10000) return Invalid("deadline_ms must be an integer from 1 to 10000");
    q->deadline_ms = int(d);
  }
  if (!obj["exclude_engaged"].get(v)) {
    bool b;
    if (v.get(b)) return Invalid("exclude_engaged must be true or false");
    q->exclude_engaged = b;
  }
  if (!obj["max_per_creator"].get(v)) {
    int64_t c;
    if (v.get(c) || c < 0 || c > 500) return Invalid("max_per_creator must be an integer from 0 to 500");
    q->max_per_creator = int(c);
  }
  if (!obj["diversity"].get(v)) {
    double d;
    if (v.get(d) || !(d >= 0 && d < 1)) return Invalid("diversity must be a number in [0, 1)");
    q->diversity = d;
  }
  if (!obj["new_creator_share"].get(v)) {
    double d;
    if (v.get(d) || !(d >= 0 && d <= 1)) return Invalid("new_creator_share must be a number in [0, 1]");
    q->new_creator_share = d;
  }
  if (!obj["cursor"].get(v) && !v.is_null()) {
    if (v.get(s) || s.empty()) return Invalid("cursor must be a non-empty string (a response's next_cursor)");
    q->cursor = s;
  }
  if (!obj["ranker"].get(v)) {
    std::optional<RankerMode> mode;
    if (!v.get(s)) mode = s == "blend" ? RankerMode::kOff : kRankerModeNames.Parse(s);
    if (!mode) return Invalid("ranker must be \"learned\" or \"off\"");
    q->ranker = *mode;
  }
  if (!obj["filter"].get(v)) {
    object filter;
    if (v.get(filter)) return Invalid("filter must be an object");
    if (auto err = UnknownField(filter, {"labels_any", "labels_none"}, "filter: "); !err.ok()) return err;
    if (auto err = StringArray(filter, "labels_any", &q->labels_any); !err.ok()) return err;
    if (auto err = StringArray(filter, "labels_none", &q->labels_none); !err.ok()) return err;
    element any;
    if (!filter["labels_any"].get(any) && q->labels_any.empty())
      return Invalid("filter.labels_any must name at least one label (omit it for no constraint)");
  }
  return {};
}

RequestError ParseEvent(element el, const std::string& where, RawEvent* r) {
  object e;
  if (el.get(e)) return Invalid(where + "must be an object");
  if (auto err = UnknownField(e, {"viewer_id", "entity_id", "action", "weight", "ts", "context"}, where); !err.ok())
    return err;
  std::string_view s;
  element v;
  if (e["viewer_id"].get(v) || v.get(s)) return Invalid(where + "viewer_id must be a string");
  if (auto err = CheckId(s, "viewer_id", where); !err.ok()) return err;
  r->viewer_id = s;
  if (e["entity_id"].get(v) || v.get(s)) return Invalid(where + "entity_id must be a string");
  if (auto err = CheckId(s, "entity_id", where); !err.ok()) return err;
  r->entity_id = s;
  if (e["action"].get(v) || v.get(s)) return Invalid(where + "action must be a string");
  r->action = s;
  if (!e["weight"].get(v) && !v.is_null()) {
    double w;
    if (v.get(w)) return Invalid(where + "weight must be a number");
    r->weight = w;
  }
  if (!e["ts"].get(v) && !v.is_null()) {
    int64_t ts;
    if (v.get(ts)) return Invalid(where + "ts must be an integer (unix milliseconds), not " + NumberText(v));
    // Today in ms is about 1.8e12; in microseconds 1.8e15, in nanoseconds 1.8e18.
    // Milliseconds from 1e14 on are past the year 5000: the unit is wrong.
    if (ts >= 100'000'000'000'000'000LL)
      return Invalid(where + "ts " + std::to_string(ts) +
                     " looks like nanoseconds; ts is unix milliseconds (divide by 1000000)");
    if (ts >= 100'000'000'000'000LL)
      return Invalid(where + "ts " + std::to_string(ts) +
                     " looks like microseconds; ts is unix milliseconds (divide by 1000)");
    r->ts = ts;
  }
  if (!e["context"].get(v) && !v.is_null()) {
    if (!v.is_object()) return Invalid(where + "context must be an object");
    // A response is named by its request_id, a string: anything else could
    // never be attributed to one.
    element id;
    if (!v["request_id"].get(id) && !id.is_string())
      return Invalid(where + "context.request_id must be a string (the request_id of the response the event is about)");
    r->context = simdjson::minify(v);
    if (auto err = CheckContextSize(r->context, where); !err.ok()) return err;
  }
  return {};
}

RequestError ParseEntity(element el, const std::string& where, RawEntity* r) {
  object e;
  if (el.get(e)) return Invalid(where + "must be an object");
  if (auto err = UnknownField(e, {"id", "kind", "creator_id", "name", "cohort", "labels", "expires_at", "attributes"},
                              where);
      !err.ok())
    return err;
  std::string_view s;
  element v;
  if (e["id"].get(v) || v.get(s)) return Invalid(where + "id must be a string");
  if (auto err = CheckId(s, "id", where); !err.ok()) return err;
  r->id = s;
  if (e["kind"].get(v) || v.get(s)) return Invalid(where + "kind must be \"user\", \"creator\" or \"item\"");
  r->kind = s;
  if (!e["creator_id"].get(v) && !v.is_null()) {
    if (v.get(s)) return Invalid(where + "creator_id must be a string");
    if (auto err = CheckId(s, "creator_id", where); !err.ok()) return err;
    r->creator_id = s;
  }
  std::string_view name;
  bool has_name = false;
  if (!e["name"].get(v) && !v.is_null()) {
    if (v.get(name)) return Invalid(where + "name must be a string");
    has_name = true;
  }
  object attrs;
  bool has_attrs = false;
  if (!e["attributes"].get(v) && !v.is_null()) {
    if (v.get(attrs)) return Invalid(where + "attributes must be an object");
    has_attrs = true;
    element c;
    if (!attrs["cohort"].get(c) && !c.get(s)) r->cohort = s;
  }
  if (!e["cohort"].get(v) && !v.is_null()) {
    if (v.get(s)) return Invalid(where + "cohort must be a string");
    r->cohort = s;
  }
  if (auto err = StringArray(e, "labels", &r->labels); !err.ok()) return Invalid(where + err.message);
  if (!e["expires_at"].get(v) && !v.is_null()) {
    int64_t t;
    if (v.get(t)) return Invalid(where + "expires_at must be an integer (unix milliseconds)");
    r->expires_at = t;
  }
  // `name` is kept among the attributes (where display names are read); an
  // explicit `name` wins over attributes.name.
  if (has_name || has_attrs) {
    JsonWriter w;
    w.BeginObject();
    if (has_name) w.Key("name").String(name);
    if (has_attrs)
      for (auto field : attrs)
        if (!(has_name && field.key == "name")) w.Key(field.key).Raw(simdjson::minify(field.value));
    w.EndObject();
    r->attributes = w.Release();
  }
  return {};
}

}  // namespace

RequestError ParseQueryRequest(const std::string& body, QueryRequest* q) {
  object obj;
  if (auto err = ParseBody(body, &obj); !err.ok()) return err;
  if (auto err = UnknownField(obj, {"viewer_id", "target", "k", "seeds", "exclude", "context", "explain",
                                    "deadline_ms", "exclude_engaged", "max_per_creator", "diversity",
                                    "new_creator_share", "ranker", "filter", "cursor"});
      !err.ok())
    return err;
  std::string_view s;
  element v;
  if (obj["viewer_id"].get(v)) return Invalid("viewer_id is required");
  if (v.get(s)) return Invalid("viewer_id must be a string");
  if (auto err = CheckId(s, "viewer_id"); !err.ok()) return err;
  q->viewer_id = s;
  if (!obj["target"].get(v)) {
    if (v.get(s)) return Invalid("target must be \"users\", \"creators\" or \"items\"");
    if (s == "users") q->target = Kind::kUser;
    else if (s == "creators") q->target = Kind::kCreator;
    else if (s == "items") q->target = Kind::kItem;
    else return Invalid("target must be \"users\", \"creators\" or \"items\", not \"" + std::string(s) + "\"");
  }
  if (!obj["k"].get(v)) {
    int64_t k;
    if (v.get(k) || k < 1 || k > 500)
      return Invalid("k must be an integer from 1 to 500, not " + NumberText(v));
    q->k = int(k);
  }
  if (auto err = StringArray(obj, "seeds", &q->seeds, /*ids=*/true); !err.ok()) return err;
  if (auto err = StringArray(obj, "exclude", &q->exclude, /*ids=*/true); !err.ok()) return err;
  return QueryKnobs(obj, q);
}

namespace {
// The optional top-level "idempotency_key" of a batch body.
RequestError BodyIdempotencyKey(object obj, std::optional<std::string>* out) {
  simdjson::dom::element v;
  if (obj["idempotency_key"].get(v)) return {};
  std::string_view key;
  if (v.get(key)) return Invalid("idempotency_key must be a string (1 to 255 printable ASCII characters)");
  if (out) *out = std::string(key);
  return {};
}
}  // namespace

RequestError ParseFeedbackRequest(const std::string& body, size_t max_events, std::vector<RawEvent>* out,
                                  std::optional<std::string>* idempotency_key) {
  object obj;
  if (auto err = ParseBody(body, &obj); !err.ok()) return err;
  if (auto err = UnknownField(obj, {"events", "idempotency_key"}); !err.ok()) return err;
  if (auto err = BodyIdempotencyKey(obj, idempotency_key); !err.ok()) return err;
  simdjson::dom::array arr;
  if (obj["events"].get(arr)) return Invalid("events must be an array of event objects");
  if (arr.size() > max_events)
    return {413, "payload_too_large", "at most " + std::to_string(max_events) + " events per batch"};
  out->reserve(arr.size());
  size_t i = 0;
  for (auto el : arr) {
    RawEvent r;
    if (auto err = ParseEvent(el, "events[" + std::to_string(i) + "]: ", &r); !err.ok()) return err;
    out->push_back(std::move(r));
    ++i;
  }
  return {};
}

RequestError ParseEntitiesRequest(const std::string& body, std::vector<RawEntity>* out,
                                  std::optional<std::string>* idempotency_key) {
  object obj;
  if (auto err = ParseBody(body, &obj); !err.ok()) return err;
  if (auto err = UnknownField(obj, {"entities", "idempotency_key"}); !err.ok()) return err;
  if (auto err = BodyIdempotencyKey(obj, idempotency_key); !err.ok()) return err;
  simdjson::dom::array arr;
  if (obj["entities"].get(arr)) return Invalid("entities must be an array of entity objects");
  size_t i = 0;
  for (auto el : arr) {
    RawEntity r;
    if (auto err = ParseEntity(el, "entities[" + std::to_string(i) + "]: ", &r); !err.ok()) return err;
    out->push_back(std::move(r));
    ++i;
  }
  return {};
}

RequestError ParseEntityPatch(const std::string& body, const RawEntity& current, RawEntity* out) {
  object obj;
  if (auto err = ParseBody(body, &obj); !err.ok()) return err;
  if (auto err = UnknownField(obj, {"name", "labels", "expires_at", "attributes", "cohort", "id", "kind", "creator_id"});
      !err.ok())
    return err;
  *out = current;
  element v;
  std::string_view s;
  // What names the entity and where it sits only an upsert changes.
  const std::pair<const char*, const std::string*> fixed[] = {
      {"id", &current.id}, {"kind", &current.kind}, {"creator_id", &current.creator_id}};
  for (const auto& [key, now] : fixed) {
    if (obj[key].get(v)) continue;
    if (!(v.is_null() && now->empty()) && (v.get(s) || s != *now))
      return Invalid(std::string(key) + " cannot be changed by PATCH (it is " +
                     (now->empty() ? std::string("unset") : "'" + *now + "'") +
                     "); upsert the whole entity with POST /affinity/entities to change it");
  }
  if (!obj["cohort"].get(v)) {
    if (!v.is_null() && v.get(s)) return Invalid("cohort must be a string or null");
    out->cohort = v.is_null() ? "" : std::string(s);
  }
  if (!obj["labels"].get(v)) {
    out->labels.clear();
    if (!v.is_null())
      if (auto err = StringArray(obj, "labels", &out->labels); !err.ok()) return err;
  }
  if (!obj["expires_at"].get(v)) {
    int64_t t = 0;
    if (!v.is_null() && v.get(t)) return Invalid("expires_at must be an integer (unix milliseconds) or null");
    out->expires_at = v.is_null() ? std::nullopt : std::optional<int64_t>(t);
  }
  // The display name lives among the attributes: the patched name (or the
  // current one), then the patched attributes (or the current ones).
  element cur_doc;
  object cur_attrs;
  const std::string current_attrs = current.attributes.empty() ? "{}" : current.attributes;
  simdjson::dom::parser cur_parser;  // the thread's parser holds the patch
  if (cur_parser.parse(current_attrs).get(cur_doc) || cur_doc.get(cur_attrs))
    return {500, "internal", "the stored attributes of '" + current.id + "' are not a JSON object"};
  element pv;
  const bool has_attrs = !obj["attributes"].get(pv), clear_attrs = has_attrs && pv.is_null();
  object patch_attrs;
  if (has_attrs && !clear_attrs && pv.get(patch_attrs)) return Invalid("attributes must be an object or null");
  const bool new_attrs = has_attrs && !clear_attrs;
  std::optional<std::string> name;
  element n;
  if (!obj["name"].get(v)) {
    if (!v.is_null() && v.get(s)) return Invalid("name must be a string or null");
    if (!v.is_null()) name = std::string(s);
  } else if (new_attrs && !patch_attrs["name"].get(n) && !n.get(s)) {
    name = std::string(s);
  } else if (!cur_attrs["name"].get(n) && !n.get(s)) {
    name = std::string(s);
  }
  // As an upsert does, attributes.cohort sets the cohort unless `cohort` is given.
  if (new_attrs && obj["cohort"].get(n) && !patch_attrs["cohort"].get(n) && !n.get(s)) out->cohort = s;
  JsonWriter w;
  w.BeginObject();
  if (name) w.Key("name").String(*name);
  if (!clear_attrs)
    for (auto field : new_attrs ? patch_attrs : cur_attrs)
      if (field.key != "name") w.Key(field.key).Raw(simdjson::minify(field.value));
  w.EndObject();
  out->attributes = w.Release();
  if (out->attributes == "{}") out->attributes.clear();
  return {};
}

RequestError CheckJsonObject(const std::string& body) {
  object obj;
  return ParseBody(body, &obj);
}

RequestError ParseStopRequest(const std::string& body, std::string* reason) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) return {};
  object obj;
  if (RequestError e = ParseBody(body, &obj); !e.ok()) return e;
  if (RequestError e = UnknownField(obj, {"reason"}); !e.ok()) return e;
  element v;
  if (!obj["reason"].get(v)) {
    std::string_view s;
    if (v.get(s)) return Invalid("reason must be a string");
    *reason = std::string(s);
  }
  return {};
}

}  // namespace affinity
