#include "models/model_registry.h"


#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <array>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <ostream>

#include "absl/strings/str_cat.h"
#include "base/enum_names.h"
#include "base/json_writer.h"
#include "base/status.h"
#include "base/strings.h"
#include "models/model_checksum.h"
#include "models/registry_file_store.h"

namespace affinity {
namespace {

namespace fs = std::filesystem;

constexpr EnumNames<ModelState, 7> kStateNames{{{
    {ModelState::kRegistered, "registered"},
    {ModelState::kRefused, "refused"},
    {ModelState::kCanaryPending, "canary-pending"},
    {ModelState::kCanary, "canary"},
    {ModelState::kPromoted, "promoted"},
    {ModelState::kRolledBack, "rolled-back"},
    {ModelState::kSuperseded, "superseded"},
}}};

void WriteVersion(const ModelVersion& v, JsonWriter& w) {
  w.BeginObject();
  w.Key("version").String(v.version);
  w.Key("created_ms").Int(v.created_ms);
  w.Key("watermark_offset").Uint(v.watermark_offset);
  w.Key("watermark_ts").Int(v.watermark_ts);
  w.Key("source").String(v.source);
  w.Key("params").Raw(v.params_json.empty() ? "{}" : v.params_json);
  w.Key("metrics").BeginObject();
  w.Key("ndcg").Double(v.ndcg);
  w.Key("blend_ndcg").Double(v.blend_ndcg);
  w.Key("current_ndcg").Double(v.current_ndcg);
  w.Key("compared_ndcg").Double(v.compared_ndcg);
  w.Key("compared_groups").Int(v.compared_groups);
  w.Key("train_groups").Int(v.train_groups);
  w.Key("validation_groups").Int(v.validation_groups);
  w.Key("train_rows").Int(v.train_rows);
  w.EndObject();
  if (v.holdout != HoldoutBy::kUnknown) {
    w.Key("holdout").BeginObject().Key("by").String(kHoldoutByNames.Name(v.holdout));
    w.Key("share").Double(v.holdout_share);
    w.Key("seed").Uint(v.holdout_seed).EndObject();
  }
  {
    const auto& r = v.rollout;
    w.Key("rollout").BeginObject();
    w.Key("state").String(std::string(ModelStateName(r.state))).Key("note").String(r.note);
    w.Key("experiment").String(r.experiment);
    w.Key("share").Double(r.share).Key("min_viewers").Int(r.min_viewers);
    w.Key("max_increase").Double(r.max_increase).Key("max_latency_increase").Double(r.max_latency_increase);
    w.Key("started_ms").Int(r.started_ms).Key("decided_ms").Int(r.decided_ms);
    w.EndObject();
  }
  if (!v.checksums.empty()) {
    w.Key("checksums").BeginObject();
    for (const auto& [file, sum] : v.checksums) w.Key(file).String(sum);
    w.EndObject();
    w.Key("checksummed").String(kChecksumOriginNames.Name(v.checksummed));
  }
  w.EndObject();
}

}  // namespace

std::string_view ModelStateName(ModelState s) {
  const std::string_view name = kStateNames.Name(s);
  return name.empty() ? "registered" : name;
}

ModelState ParseModelState(std::string_view name) { return kStateNames.Parse(name).value_or(ModelState::kRegistered); }

std::ostream& operator<<(std::ostream& out, ModelState s) { return out << ModelStateName(s); }

std::optional<std::string> GateRefusal(const ModelVersion& c, const ModelVersion* cur, double tolerance) {
  // Without a current model the blend serves: it is the reference. Otherwise
  // both are measured on the held-out groups neither trained on when the
  // candidate has that figure, else the current model's recorded one stands.
  const bool compared = cur && c.current_ndcg >= 0;
  const double reference = !cur ? c.blend_ndcg : compared ? c.current_ndcg : cur->ndcg;
  const double mine = compared && c.compared_ndcg >= 0 ? c.compared_ndcg : c.ndcg;
  if (mine + tolerance >= reference) return std::nullopt;
  char buf[320];
  std::snprintf(buf, sizeof buf, "validation NDCG %.4f is below %s's %.4f%s by more than %.4f", mine,
                cur ? ("the current model " + cur->version).c_str() : "the blend", reference,
                compared && c.compared_groups > 0
                    ? (" on the " + std::to_string(c.compared_groups) + " held-out groups neither trained on").c_str()
                    : "",
                tolerance);
  return std::string(buf);
}

ModelVersion* RegistryState::Find(const std::string& version) {
  for (auto& v : versions)
    if (v.version == version) return &v;
  return nullptr;
}

const ModelVersion* RegistryState::Find(const std::string& version) const {
  return const_cast<RegistryState*>(this)->Find(version);
}

ModelRegistry::ModelRegistry(std::string data_dir, const Clock* clock)
    : ModelRegistry(data_dir, std::make_shared<FileRegistryStateStore>(data_dir + "/models"), clock) {}

ModelRegistry::ModelRegistry(std::string data_dir, std::shared_ptr<RegistryStateStore> state, const Clock* clock)
    : dir_(std::move(data_dir) + "/models"), state_(std::move(state)), clock_(clock) {}

absl::StatusOr<RegistryState> ModelRegistry::Read() const { return state_->Read(); }

bool RegistryLoaded(std::string_view json, std::string* loaded) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view s;
  if (parser.parse(json.data(), json.size()).get(doc) || doc["loaded"].get(s)) return false;
  *loaded = std::string(s);
  return true;
}

absl::StatusOr<RegistryState> ParseRegistryJson(std::string_view json) {
  RegistryState st;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json.data(), json.size()).get(doc)) return absl::DataLossError("not valid JSON");
  std::string_view s;
  if (!doc["current"].get(s)) st.current = std::string(s);
  if (!doc["canary"].get(s)) st.canary = std::string(s);
  simdjson::dom::array arr;
  if (!doc["history"].get(arr))
    for (auto h : arr)
      if (!h.get(s)) st.history.emplace_back(s);
  if (doc["versions"].get(arr)) return absl::DataLossError("no versions array");
  for (auto e : arr) {
    ModelVersion v;
    int64_t i = 0;
    uint64_t u = 0;
    double d = 0;
    if (e["version"].get(s)) return absl::DataLossError("a version has no name");
    v.version = std::string(s);
    if (!e["created_ms"].get(i)) v.created_ms = i;
    if (!e["watermark_offset"].get(u)) v.watermark_offset = u;
    if (!e["watermark_ts"].get(i)) v.watermark_ts = i;
    if (!e["source"].get(s)) v.source = std::string(s);
    simdjson::dom::element p;
    if (!e["params"].get(p)) v.params_json = simdjson::minify(p);
    simdjson::dom::element m;
    if (!e["metrics"].get(m)) {
      if (!m["ndcg"].get(d)) v.ndcg = d;
      if (!m["blend_ndcg"].get(d)) v.blend_ndcg = d;
      if (!m["current_ndcg"].get(d)) v.current_ndcg = d;
      if (!m["compared_ndcg"].get(d)) v.compared_ndcg = d;
      if (!m["compared_groups"].get(i)) v.compared_groups = i;
      if (!m["train_groups"].get(i)) v.train_groups = i;
      if (!m["validation_groups"].get(i)) v.validation_groups = i;
      if (!m["train_rows"].get(i)) v.train_rows = i;
    }
    simdjson::dom::element h;
    if (!e["holdout"].get(h)) {
      if (!h["by"].get(s)) v.holdout = kHoldoutByNames.Parse(s).value_or(HoldoutBy::kUnknown);
      if (!h["share"].get(d)) v.holdout_share = d;
      if (!h["seed"].get(u)) v.holdout_seed = u;
    }
    simdjson::dom::element r;
    if (!e["rollout"].get(r)) {
      auto& ro = v.rollout;
      if (!r["state"].get(s)) ro.state = ParseModelState(s);
      if (!r["note"].get(s)) ro.note = std::string(s);
      if (!r["experiment"].get(s)) ro.experiment = std::string(s);
      if (!r["share"].get(d)) ro.share = d;
      if (!r["min_viewers"].get(i)) ro.min_viewers = i;
      if (!r["max_increase"].get(d)) ro.max_increase = d;
      if (!r["max_latency_increase"].get(d)) ro.max_latency_increase = d;
      if (!r["started_ms"].get(i)) ro.started_ms = i;
      if (!r["decided_ms"].get(i)) ro.decided_ms = i;
    }
    simdjson::dom::object sums;
    if (!e["checksums"].get(sums))
      for (auto [file, sum] : sums)
        if (!sum.get(s)) v.checksums[std::string(file)] = std::string(s);
    if (!e["checksummed"].get(s)) v.checksummed = kChecksumOriginNames.Parse(s).value_or(ChecksumOrigin::kNone);
    st.versions.push_back(std::move(v));
  }
  return st;
}

std::string RegistryJson(const RegistryState& st, const std::string* loaded) {
  JsonWriter w;
  w.BeginObject();
  w.Key("current").String(st.current);
  w.Key("canary").String(st.canary);
  w.Key("history").BeginArray();
  for (const auto& h : st.history) w.String(h);
  w.EndArray();
  w.Key("versions").BeginArray();
  for (const auto& v : st.versions) WriteVersion(v, w);
  w.EndArray();
  if (loaded) w.Key("loaded").String(*loaded);
  w.EndObject();
  return w.Release();
}

absl::StatusOr<std::string> ModelRegistry::Register(const LearnedRanker& model, ModelVersion meta) {
  absl::Status st = state_->Update(
      [&](RegistryState& st) -> absl::StatusOr<bool> {
        int next = 1;
        for (const auto& v : st.versions) next = std::max(next, std::atoi(v.version.c_str() + 1) + 1);
        char name[16];
        std::snprintf(name, sizeof name, "m%06d", next);
        meta.version = name;
        meta.created_ms = clock_->NowMillis();
        // Written to a staging dir, then renamed: a version dir is complete or absent.
        std::error_code ec;
        const std::string staging = dir_ + "/." + meta.version + ".tmp";
        fs::remove_all(staging, ec);
        AFF_RETURN_IF_ERROR(model.Save(staging));
        AFF_ASSIGN_OR_RETURN(meta.checksums, ModelFileChecksums(staging));
        meta.checksummed = ChecksumOrigin::kRegistered;
        fs::remove_all(dir_ + "/" + meta.version, ec);  // a version dir the state never named (a crash before)
        fs::rename(staging, dir_ + "/" + meta.version, ec);
        if (ec) return absl::InternalError("cannot publish model " + meta.version + ": " + ec.message());
        st.versions.push_back(meta);
        return true;
      },
      /*create=*/true);
  if (!st.ok()) return st;
  return meta.version;
}

absl::StatusOr<std::string> ModelRegistry::Import(const std::string& model_dir) {
  AFF_ASSIGN_OR_RETURN(auto model, LearnedRanker::Load(model_dir));
  ModelVersion meta;
  meta.source = "imported:" + model_dir;
  if (auto text = ReadFile(model_dir + "/validation.json")) {
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (parser.parse(*text).get(doc)) return absl::DataLossError(model_dir + "/validation.json is not valid JSON");
    double d;
    int64_t i;
    std::string_view s;
    if (!doc["source"].get(s)) meta.source = std::string(s);
    if (!doc["ndcg"].get(d)) meta.ndcg = d;
    if (!doc["blend_ndcg"].get(d)) meta.blend_ndcg = d;
    if (!doc["train_groups"].get(i)) meta.train_groups = i;
    if (!doc["validation_groups"].get(i)) meta.validation_groups = i;
    if (!doc["train_rows"].get(i)) meta.train_rows = i;
  }
  if (auto text = ReadFile(model_dir + "/ranker.json")) meta.params_json = *text;
  while (!meta.params_json.empty() && std::isspace(static_cast<unsigned char>(meta.params_json.back())))
    meta.params_json.pop_back();
  return Register(*model, meta);
}

absl::Status ModelRegistry::Promote(const std::string& version, double tolerance, bool force, std::string note) {
  return Update([&](RegistryState& st) -> absl::StatusOr<bool> {
    const ModelVersion* cand = nullptr;
    const ModelVersion* cur = nullptr;
    for (const auto& v : st.versions) {
      if (v.version == version) cand = &v;
      if (v.version == st.current) cur = &v;
    }
    if (!cand) return absl::NotFoundError("no model version " + version);
    if (st.current == version) return false;
    if (!force) {
      if (const std::optional<std::string> why = GateRefusal(*cand, cur, tolerance))
        return absl::FailedPreconditionError("promotion refused: " + *why + " (ranker.gate_tolerance; --force overrides)");
    }
    if (!st.current.empty()) st.history.push_back(st.current);
    st.current = version;
    ModelVersion* v = st.Find(version);
    v->rollout.state = ModelState::kPromoted;
    v->rollout.note = !note.empty() ? std::move(note)
                      : std::string("promoted by hand (affinity model promote") + (force ? " --force, past the gate)" : ")");
    if (st.canary == version) {  // promoted by hand while in canary: the canary ends here
      v->rollout.note += " before its canary decided";
      st.canary.clear();
    }
    v->rollout.decided_ms = clock_->NowMillis();
    return true;
  });
}

absl::Status ModelRegistry::StartCanary(const std::string& version, const CanaryPlan& plan) {
  return Update([&](RegistryState& st) -> absl::StatusOr<bool> {
    ModelVersion* v = st.Find(version);
    if (!v) return absl::NotFoundError("no model version " + version);
    const int64_t now = clock_->NowMillis();
    if (ModelVersion* old = st.Find(st.canary); old && old != v) {
      old->rollout.state = ModelState::kSuperseded;
      old->rollout.note = "superseded by " + version + " before its canary decided";
      old->rollout.decided_ms = now;
    }
    v->rollout = {};
    v->rollout.state = ModelState::kCanaryPending;
    v->rollout.note = "waiting for a server to start its canary";
    v->rollout.share = plan.share;
    v->rollout.min_viewers = plan.min_viewers;
    v->rollout.max_increase = plan.max_increase;
    v->rollout.max_latency_increase = plan.max_latency_increase;
    v->rollout.started_ms = now;
    st.canary = version;
    return true;
  });
}

absl::Status ModelRegistry::MarkCanaryRunning(const std::string& version, const std::string& experiment) {
  return Update([&](RegistryState& st) -> absl::StatusOr<bool> {
    ModelVersion* v = st.Find(version);
    if (!v || st.canary != version || v->rollout.state == ModelState::kCanary) return false;
    v->rollout.state = ModelState::kCanary;
    v->rollout.note = absl::StrCat("serving ", v->rollout.share, "% of viewers in experiment ", experiment);
    v->rollout.experiment = experiment;
    return true;
  });
}

absl::Status ModelRegistry::FinishCanary(const std::string& version, bool promote, const std::string& note) {
  return Update([&](RegistryState& st) -> absl::StatusOr<bool> {
    ModelVersion* v = st.Find(version);
    if (!v || st.canary != version) return false;
    v->rollout.state = promote ? ModelState::kPromoted : ModelState::kRolledBack;
    v->rollout.note = note;
    v->rollout.decided_ms = clock_->NowMillis();
    st.canary.clear();
    if (promote && st.current != version) {
      if (!st.current.empty()) st.history.push_back(st.current);
      st.current = version;
    }
    return true;
  });
}

absl::StatusOr<std::string> ModelRegistry::Rollback() {
  std::string now_current;
  AFF_RETURN_IF_ERROR(Update([&](RegistryState& st) -> absl::StatusOr<bool> {
    ModelVersion* from = st.Find(st.current);
    if (!from) return absl::FailedPreconditionError("nothing to roll back: no model is current (the blend ranks)");
    if (st.history.empty()) {
      st.current.clear();  // the first promoted model: back to the blend
    } else {
      st.current = st.history.back();
      st.history.pop_back();
    }
    const int64_t now = clock_->NowMillis();
    from->rollout.state = ModelState::kRolledBack;
    from->rollout.note = "rolled back by hand (affinity model rollback); " +
                         (st.current.empty() ? std::string("the blend ranks again") : st.current + " serves again");
    from->rollout.decided_ms = now;
    if (ModelVersion* to = st.Find(st.current); to && to->rollout.state != ModelState::kPromoted) {
      to->rollout.state = ModelState::kPromoted;
      to->rollout.note = "current again after " + from->version + " was rolled back";
      to->rollout.decided_ms = now;
    }
    now_current = st.current;
    return true;
  }));
  return now_current;
}

absl::StatusOr<std::unique_ptr<LearnedRanker>> ModelRegistry::Load(const std::string& version) {
  AFF_ASSIGN_OR_RETURN(RegistryState st, Read());
  const ModelVersion* entry = st.Find(version);
  if (!entry) return absl::NotFoundError("no model version " + version + " in " + state_->Where());
  const std::string dir = dir_ + "/" + version;
  const bool unverified = entry->checksums.empty();
  std::map<std::string, std::string> sums;
  if (!unverified) {
    if (absl::Status ok = VerifyModelFiles(dir, entry->checksums); !ok.ok())
      return absl::DataLossError("model " + version + ": " + std::string(ok.message()));
  } else {
    AFF_ASSIGN_OR_RETURN(sums, ModelFileChecksums(dir));
  }
  AFF_ASSIGN_OR_RETURN(auto model, LearnedRanker::Load(dir));
  model->set_version("lambdamart-" + version);
  if (unverified) {
    // Registered before checksums were kept: accepted unverified this once,
    // and what it holds now is recorded so that a later change is refused.
    absl::Status recorded = Update([&](RegistryState& now) -> absl::StatusOr<bool> {
      ModelVersion* v = now.Find(version);
      if (!v || !v->checksums.empty()) return false;
      v->checksums = sums;
      v->checksummed = ChecksumOrigin::kFirstLoad;
      return true;
    });
    spdlog::warn("model {} has no checksum in registry.json (registered before checksums were kept): loaded "
                 "unverified; {}",
                 version,
                 recorded.ok() ? "its files' checksums are recorded now"
                               : "its checksums could not be recorded: " + std::string(recorded.message()));
  }
  return model;
}

}  // namespace affinity
