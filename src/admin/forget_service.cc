#include "admin/forget_service.h"

#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <unordered_set>

#include "audit/audit_record.h"
#include "base/status.h"
#include "state/registry.h"

namespace affinity {
namespace {

bool IdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
         c == '.' || uint8_t(c) >= 0x80;
}

// Whether `text` holds `id` with no id character on either side.
bool NamesWholeWord(std::string_view text, std::string_view id) {
  for (size_t at = text.find(id); at != std::string_view::npos; at = text.find(id, at + 1)) {
    const bool before = at > 0 && IdChar(text[at - 1]);
    const bool after = at + id.size() < text.size() && IdChar(text[at + id.size()]);
    if (!before && !after) return true;
  }
  return false;
}

// The id as it reads inside a JSON string.
std::string JsonEscaped(const std::string& id) {
  JsonWriter w;
  w.String(id);
  std::string quoted = w.Release();
  return quoted.size() >= 2 ? quoted.substr(1, quoted.size() - 2) : quoted;
}

}  // namespace

void WriteForgetOutcome(JsonWriter& w, const ForgetOutcome& o) {
  w.BeginObject();
  w.Key("forgotten").String(o.id);
  w.Key("removed").BeginObject();
  w.Key("events").Uint(o.events).Key("follows").Uint(o.follows);
  w.Key("experiment_counters").Uint(o.experiment_counters);
  w.Key("audit_records").Uint(o.audit_records).Key("audit_records_naming").Uint(o.audit_records_naming);
  w.EndObject();
  w.Key("checkpoint").String(o.checkpoint).Key("batch").String(o.batch).Key("seconds").Double(o.seconds);
  w.EndObject();
}

absl::StatusOr<std::vector<std::string>> AuditRecordsNaming(const Store& store, const std::vector<std::string>& terms) {
  std::vector<std::string> found, escaped;
  for (const std::string& t : terms)
    if (!t.empty()) escaped.push_back(JsonEscaped(t));
  AFF_RETURN_IF_ERROR(store.ScanStoredAudits([&](std::string_view request_id, int64_t, std::string_view bytes) {
    auto readable = ExpandAuditRecord(bytes);
    const std::string_view text = readable.ok() ? std::string_view(*readable) : bytes;
    if (std::any_of(escaped.begin(), escaped.end(), [&](const std::string& t) { return NamesWholeWord(text, t); }))
      found.emplace_back(request_id);
  }));
  return found;
}

std::string DisplayNameIn(std::string_view attributes) {
  if (attributes.find("\"name\"") == std::string_view::npos) return "";
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view name;
  if (parser.parse(attributes.data(), attributes.size()).get(doc) || doc["name"].get(name)) return "";
  return std::string(name);
}

absl::StatusOr<std::string> ForgetService::NameOf(const std::string& id) const {
  if (parts_.registry) {
    const auto ref = parts_.registry->Find(id);
    const auto info = ref ? parts_.registry->Get(*ref) : nullptr;
    return info ? DisplayNameIn(info->attributes) : std::string();
  }
  std::string name;
  AFF_RETURN_IF_ERROR(parts_.store->ScanEntities([&](const EntityRecord& e) {
    if (e.ext_id == id) name = DisplayNameIn(e.attributes);
  }));
  return name;
}

absl::Status ForgetService::RedactAudit(const std::string& id, const std::string& name, ForgetOutcome* out) {
  parts_.audit->Flush();  // records queued before the forget are stored, so that they are found
  AFF_ASSIGN_OR_RETURN(std::vector<std::string> own, parts_.store->AuditRecordsOf(id));
  // Reasons call people by their display name: a record naming it is redacted
  // too (another person of the same name included: redaction errs on removal).
  AFF_ASSIGN_OR_RETURN(std::vector<std::string> naming, AuditRecordsNaming(*parts_.store, {id, name}));
  std::unordered_set<std::string> own_set(own.begin(), own.end());
  auto redact = [&](const std::string& request_id, uint64_t* count) -> absl::Status {
    const absl::Status st = parts_.audit->Redact(request_id);
    if (st.ok()) ++*count;
    // NotFound: expired, or redacted already (a second forget, or both lists).
    return st.ok() || absl::IsNotFound(st) ? absl::OkStatus() : st;
  };
  for (const std::string& request_id : own) AFF_RETURN_IF_ERROR(redact(request_id, &out->audit_records));
  for (const std::string& request_id : naming)
    if (!own_set.contains(request_id)) AFF_RETURN_IF_ERROR(redact(request_id, &out->audit_records_naming));
  return absl::OkStatus();
}

absl::StatusOr<ForgetOutcome> ForgetService::Forget(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto t0 = std::chrono::steady_clock::now();
  const Clock* clock = parts_.clock ? parts_.clock : SystemClock::Default();
  ForgetOutcome out;
  out.id = id;
  if (parts_.registry && !parts_.registry->Find(id))
    return absl::NotFoundError("no viewer or entity with id '" + id + "'");
  if (parts_.audit) {
    AFF_ASSIGN_OR_RETURN(const std::string name, NameOf(id));
    AFF_RETURN_IF_ERROR(RedactAudit(id, name, &out));
  }
  AFF_ASSIGN_OR_RETURN(Store::ForgetSummary removed, parts_.store->Forget(id, clock->NowMillis()));
  out.ref = removed.ref;
  out.events = removed.events;
  out.follows = removed.follows;
  out.experiment_counters = removed.experiment_counters;
  if (parts_.registry) {
    EntityRecord tombstone;
    tombstone.ref = removed.ref;
    tombstone.ext_id = ForgottenKey(removed.ref);
    tombstone.deleted = true;
    std::lock_guard<std::mutex> write(parts_.registry->write_mutex());
    parts_.registry->Forget(id, std::move(tombstone));
  }
  if (parts_.live) parts_.live->Forget(removed.ref, removed.removed);
  out.checkpoint = "none";
  if (parts_.checkpoint) {
    auto written = parts_.checkpoint();
    out.checkpoint = written.ok() ? *written : "failed: " + std::string(written.status().message());
  }
  out.batch = parts_.start_batch ? parts_.start_batch() : "not scheduled (run `affinity batch`)";
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  spdlog::info("forgot a person: {} events, {} follows, {} experiment counters, {} + {} audit records redacted; "
               "checkpoint {}; batch {}; {:.2f} s", out.events, out.follows, out.experiment_counters,
               out.audit_records, out.audit_records_naming, out.checkpoint, out.batch, out.seconds);
  return out;
}

std::vector<AdminRoute> ForgetService::Routes() {
  AdminRoute forget{"POST", "/admin/viewers/{id*}/forget", "viewer_forget", Scope::kAdmin, /*writes=*/true};
  forget.handle = [this](const AdminRequest& req) -> absl::StatusOr<AdminReply> {
    const std::string& id = req.args.at("id");
    if (absl::Status bad = CheckExternalId(id, "id (in the path)"); !bad.ok()) return bad;
    AFF_ASSIGN_OR_RETURN(ForgetOutcome outcome, Forget(id));
    JsonWriter w;
    WriteForgetOutcome(w, outcome);
    return AdminReply{200, w.Release()};
  };
  return {std::move(forget)};
}

}  // namespace affinity
