#include "features/snapshot.h"

#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>

#include "base/json_writer.h"
#include "base/section_file.h"
#include "base/status.h"
#include "base/strings.h"
#include "features/feature_store.h"

namespace affinity {
namespace fs = std::filesystem;
namespace {

// arrays.bin (base/section_file.h). Version 1 checked each section's data
// only; version 2's checksum also covers the section's name and length;
// version 3 aligns each section's data, so that a server maps the file and
// uses the arrays where they are instead of copying them. All are read.
constexpr SectionFormat kArraysV1{std::string_view("AFFSNAP1", 8), false, 1};
constexpr SectionFormat kArraysV2{std::string_view("AFFSNAP2", 8), true, 1};
constexpr SectionFormat kArrays{std::string_view("AFFSNAP3", 8), true, 64};

std::string KindKey(int k, const char* name) { return std::string(KindName(Kind(k))) + "." + name; }


// Reads a number field from the manifest (written by us, so a simple scan suffices).
int64_t ManifestInt(const std::string& json, const std::string& key) {
  auto pos = json.find("\"" + key + "\":");
  if (pos == std::string::npos) return 0;
  return std::strtoll(json.c_str() + pos + key.size() + 3, nullptr, 10);
}
double ManifestDouble(const std::string& json, const std::string& key, double def) {
  auto pos = json.find("\"" + key + "\":");
  if (pos == std::string::npos) return def;
  return std::strtod(json.c_str() + pos + key.size() + 3, nullptr);
}

}  // namespace

int64_t Snapshot::GroupFreshnessMs(const std::string& group) const {
  auto it = stamps.find(group);
  return it != stamps.end() && it->second.freshness_ms > 0 ? it->second.freshness_ms : created_ms;
}

std::string Snapshot::GroupProvenance(const std::string& group) const {
  auto it = stamps.find(group);
  if (it != stamps.end() && !it->second.provenance.empty()) return it->second.provenance;
  const FeatureGroup* g = FindFeatureGroup(groups, group);
  return (g ? g->owner : std::string("batch")) + "@" + version + " watermark=" + std::to_string(watermark_offset);
}

std::vector<std::string> Snapshot::StaleGroups(int64_t now_ms) const {
  std::vector<std::string> out;
  for (const auto& g : groups)
    if (g.ttl_seconds > 0 && now_ms - GroupFreshnessMs(g.name) > g.ttl_seconds * 1000) out.push_back(g.name);
  return out;
}

bool Snapshot::GroupFresh(const char* group, int64_t now_ms) const {
  const FeatureGroup* g = FindFeatureGroup(groups, group);
  return g && (g->ttl_seconds <= 0 || now_ms - GroupFreshnessMs(g->name) <= g->ttl_seconds * 1000);
}

std::string CurrentSnapshotVersion(const std::string& data_dir) {
  auto cur = ReadFile(data_dir + "/snapshots/CURRENT");
  if (!cur) return "";
  std::string v = *cur;
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
  return v;
}

namespace {

// The next version name under `root` ("v000001" when none).
std::string NextVersion(const std::string& root) {
  std::error_code ec;
  int next = 1;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    std::string name = entry.path().filename().string();
    if (name.size() == 7 && name[0] == 'v') next = std::max(next, std::atoi(name.c_str() + 1) + 1);
  }
  char vname[16];
  std::snprintf(vname, sizeof vname, "v%06d", next);
  return vname;
}

// arrays.bin: the indexes (neighbour lists, walk adjacency, popularity order, gram).
absl::Status WriteArrays(const Snapshot& snap, const std::string& tmp) {
  SectionWriter aw(kArrays);
  for (int k = 0; k < kNumKinds; ++k) {
    const KindSnapshot& ks = snap.kinds[k];
    aw.Add(KindKey(k, "popular"), ks.popular);
    aw.Add(KindKey(k, "nb_off"), ks.nb_off);
    aw.Add(KindKey(k, "nb_ids"), ks.nb_ids);
    aw.Add(KindKey(k, "nb_w"), ks.nb_w);
    aw.Add(KindKey(k, "nb_sup"), ks.nb_sup);
    aw.Add(KindKey(k, "seq_off"), ks.seq_off);
    aw.Add(KindKey(k, "seq_ids"), ks.seq_ids);
    aw.Add(KindKey(k, "seq_w"), ks.seq_w);
    aw.Add(KindKey(k, "eng_off"), ks.eng_off);
    aw.Add(KindKey(k, "eng_users"), ks.eng_users);
    aw.Add(KindKey(k, "ann_ids"), ks.ann_ids);
  }
  aw.Add("user_eng_off", snap.user_eng_off);
  aw.Add("user_eng", snap.user_eng);
  aw.Add("gram", snap.gram);
  if (!WriteFileAtomic(tmp + "/arrays.bin", aw.data())) return absl::InternalError("snapshot: cannot write arrays.bin");

  return absl::OkStatus();
}

// features/: the feature groups' records, through the feature store.
absl::Status WriteFeatures(const Snapshot& snap, const std::string& tmp) {
  AFF_ASSIGN_OR_RETURN(auto store, OpenRocksFeatureStore(tmp + "/features", false, snap.groups));
  const std::string prov_als = snap.GroupProvenance(kGroupEntityEmbedding);
  const std::string prov_pop = snap.GroupProvenance(kGroupPopularity);
  const std::string prov_graph = snap.GroupProvenance(kGroupGraph);
  const int64_t ts_als = snap.GroupFreshnessMs(kGroupEntityEmbedding), ts_pop = snap.GroupFreshnessMs(kGroupPopularity),
                ts_graph = snap.GroupFreshnessMs(kGroupGraph);
  std::vector<FeatureRecord> recs;
  auto flush = [&](const char* group) -> absl::Status {
    auto s = store->Put(group, recs);
    recs.clear();
    return s;
  };
  for (uint32_t u = 0; u < snap.kinds[0].count && u < snap.viewer_has_emb.size(); ++u) {
    if (!snap.viewer_has_emb[u]) continue;
    const float* e = &snap.viewer_emb[size_t(u) * snap.dim];
    recs.push_back({Ref(Kind::kUser, u), std::vector<float>(e, e + snap.dim), ts_als, prov_als});
    if (recs.size() >= 50000) AFF_RETURN_IF_ERROR(flush(kGroupViewerEmbedding));
  }
  AFF_RETURN_IF_ERROR(flush(kGroupViewerEmbedding));
  for (int k = 0; k < kNumKinds; ++k) {
    const KindSnapshot& ks = snap.kinds[k];
    for (uint32_t i = 0; i < ks.count; ++i) {
      if (const float* e = ks.Embedding(i, snap.dim))
        recs.push_back({Ref(Kind(k), i), std::vector<float>(e, e + snap.dim), ts_als, prov_als});
      if (recs.size() >= 50000) AFF_RETURN_IF_ERROR(flush(kGroupEntityEmbedding));
    }
    AFF_RETURN_IF_ERROR(flush(kGroupEntityEmbedding));
    for (uint32_t i = 0; i < ks.count; ++i) {
      if (ks.popularity[i] > 0)
        recs.push_back({Ref(Kind(k), i), {ks.popularity[i], ks.popularity_pct[i]}, ts_pop, prov_pop});
      if (recs.size() >= 50000) AFF_RETURN_IF_ERROR(flush(kGroupPopularity));
    }
    AFF_RETURN_IF_ERROR(flush(kGroupPopularity));
    for (uint32_t i = 0; i < ks.count; ++i) {
      if (ks.followers[i] > 0 || ks.following[i] > 0 || ks.engagers[i] > 0)
        recs.push_back({Ref(Kind(k), i), {ks.followers[i], ks.following[i], ks.engagers[i]}, ts_graph, prov_graph});
      if (recs.size() >= 50000) AFF_RETURN_IF_ERROR(flush(kGroupGraph));
    }
    AFF_RETURN_IF_ERROR(flush(kGroupGraph));
  }
  return store->Seal();
}

std::string ManifestJson(const Snapshot& snap, const std::string& manifest_extra_json) {
  JsonWriter m;
  m.BeginObject();
  m.Key("version").String(snap.version);
  m.Key("created_ms").Int(snap.created_ms);
  m.Key("watermark_offset").Uint(snap.watermark_offset);
  m.Key("watermark_ts").Int(snap.watermark_ts);
  m.Key("dim").Int(snap.dim);
  m.Key("als_lambda").Double(snap.als_lambda);
  m.Key("als_alpha").Double(snap.als_alpha);
  m.Key("counts").BeginObject();
  for (int k = 0; k < kNumKinds; ++k) m.Key(KindName(Kind(k))).Uint(snap.kinds[k].count);
  m.EndObject();
  m.Key("feature_groups").BeginArray();
  for (const auto& g : snap.groups) {
    m.BeginObject().Key("name").String(g.name).Key("owner").String(g.owner);
    m.Key("components").Int(int64_t(g.components.size())).Key("ttl_seconds").Int(g.ttl_seconds);
    m.Key("protected").Bool(g.is_protected).Key("freshness_ts").Int(snap.GroupFreshnessMs(g.name));
    m.Key("provenance").String(snap.GroupProvenance(g.name));
    m.EndObject();
  }
  m.EndArray();
  if (!manifest_extra_json.empty()) m.Key("batch").Raw(manifest_extra_json);
  m.EndObject();
  return m.Release();
}

// Keeps the newest `keep` versions (and always `current`).
void PruneVersions(const std::string& root, const std::string& current, int keep) {
  std::error_code ec;
  std::vector<std::string> versions;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    std::string name = entry.path().filename().string();
    if (name.size() == 7 && name[0] == 'v') versions.push_back(name);
  }
  std::sort(versions.begin(), versions.end());
  for (size_t i = 0; i + size_t(keep) < versions.size(); ++i)
    if (versions[i] != current) fs::remove_all(root + "/" + versions[i], ec);
}

}  // namespace

absl::StatusOr<std::string> PublishSnapshot(const std::string& data_dir, Snapshot& snap,
                                            const std::string& manifest_extra_json, int keep) {
  const std::string root = data_dir + "/snapshots";
  std::error_code ec;
  fs::create_directories(root, ec);
  snap.version = NextVersion(root);
  const std::string tmp = root + "/tmp-" + snap.version, final_dir = root + "/" + snap.version;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) return absl::InternalError("snapshot: cannot create " + tmp);
  AFF_RETURN_IF_ERROR(WriteArrays(snap, tmp));
  snap.groups = BatchFeatureGroups(snap.dim);
  AFF_RETURN_IF_ERROR(WriteFeatures(snap, tmp));
  for (int k = 0; k < kNumKinds; ++k)
    if (snap.kinds[k].ann)
      AFF_RETURN_IF_ERROR(snap.kinds[k].ann->Save(tmp + "/ann_" + std::string(KindName(Kind(k))) + ".hnsw"));
  // The manifest, then publish: rename the directory, then replace CURRENT.
  snap.manifest_json = ManifestJson(snap, manifest_extra_json);
  if (!WriteFileAtomic(tmp + "/manifest.json", snap.manifest_json))
    return absl::InternalError("snapshot: cannot write manifest");
  fs::rename(tmp, final_dir, ec);
  if (ec) return absl::InternalError("snapshot: cannot rename " + tmp + ": " + ec.message());
  if (!WriteFileAtomic(root + "/CURRENT", snap.version + "\n"))
    return absl::InternalError("snapshot: cannot write CURRENT");
  PruneVersions(root, snap.version, keep);
  return snap.version;
}

absl::StatusOr<std::shared_ptr<const Snapshot>> LoadSnapshot(const std::string& dir,
                                                          const std::map<std::string, FeatureGroupSettings>& settings) {
  AFF_ASSIGN_OR_RETURN(std::shared_ptr<Snapshot> snap, LoadSnapshotForUpdate(dir));
  AFF_RETURN_IF_ERROR(ApplyFeatureSettings(settings, &snap->groups));
  return std::shared_ptr<const Snapshot>(std::move(snap));
}

absl::StatusOr<std::shared_ptr<Snapshot>> LoadSnapshotForUpdate(const std::string& dir) {
  using SteadyClock = std::chrono::steady_clock;
  const auto t_start = SteadyClock::now();
  auto since = [](SteadyClock::time_point t) { return std::chrono::duration<double>(SteadyClock::now() - t).count(); };
  auto snap = std::make_shared<Snapshot>();
  auto manifest = ReadFile(dir + "/manifest.json");
  if (!manifest) return absl::NotFoundError("snapshot: no manifest in " + dir);
  snap->manifest_json = *manifest;
  snap->version = fs::path(dir).filename().string();
  snap->created_ms = ManifestInt(*manifest, "created_ms");
  snap->watermark_offset = uint64_t(ManifestInt(*manifest, "watermark_offset"));
  snap->watermark_ts = ManifestInt(*manifest, "watermark_ts");
  snap->dim = int(ManifestInt(*manifest, "dim"));
  snap->als_lambda = ManifestDouble(*manifest, "als_lambda", 0.05);
  snap->als_alpha = ManifestDouble(*manifest, "als_alpha", 4.0);
  if (snap->dim <= 0 || snap->dim > 1024) return absl::DataLossError("snapshot: bad dim in " + dir);
  const int dim = snap->dim;
  snap->kinds[0].count = uint32_t(ManifestInt(*manifest, "user"));
  snap->kinds[1].count = uint32_t(ManifestInt(*manifest, "creator"));
  snap->kinds[2].count = uint32_t(ManifestInt(*manifest, "item"));
  snap->groups = BatchFeatureGroups(dim);
  {  // each group's own freshness and provenance, as the manifest keeps them
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    simdjson::dom::array groups;
    if (!parser.parse(*manifest).get(doc) && !doc["feature_groups"].get(groups))
      for (auto g : groups) {
        std::string_view name, prov;
        int64_t ts = 0;
        if (g["name"].get(name) || g["freshness_ts"].get(ts) || g["provenance"].get(prov)) continue;
        snap->stamps[std::string(name)] = {ts, std::string(prov)};
      }
  }

  SectionReader ar;
  if (auto st = ar.Open(dir + "/arrays.bin", {kArrays, kArraysV2, kArraysV1}); !st.ok())
    return absl::Status(st.code(), "snapshot: " + std::string(st.message()));
  for (int k = 0; k < kNumKinds; ++k) {
    KindSnapshot& ks = snap->kinds[k];
    ar.Get(KindKey(k, "popular"), &ks.popular);
    ar.Get(KindKey(k, "nb_off"), &ks.nb_off);
    ar.Get(KindKey(k, "nb_ids"), &ks.nb_ids);
    ar.Get(KindKey(k, "nb_w"), &ks.nb_w);
    ar.Get(KindKey(k, "nb_sup"), &ks.nb_sup);
    ar.Get(KindKey(k, "seq_off"), &ks.seq_off);
    ar.Get(KindKey(k, "seq_ids"), &ks.seq_ids);
    ar.Get(KindKey(k, "seq_w"), &ks.seq_w);
    ar.Get(KindKey(k, "eng_off"), &ks.eng_off);
    ar.Get(KindKey(k, "eng_users"), &ks.eng_users);
    ar.Get(KindKey(k, "ann_ids"), &ks.ann_ids);
    ks.popularity.assign(ks.count, 0.f);
    ks.popularity_pct.assign(ks.count, 0.f);
    ks.emb.assign(size_t(ks.count) * dim, 0.f);
    ks.has_emb.assign(ks.count, 0);
    ks.followers.assign(ks.count, 0.f);
    ks.following.assign(ks.count, 0.f);
    ks.engagers.assign(ks.count, 0.f);
    if (ks.nb_off.size() != (ks.count ? ks.count + 1 : ks.nb_off.size()) && !ks.nb_off.empty())
      return absl::DataLossError("snapshot: neighbour index size mismatch");
    if (!ks.nb_sup.empty() && ks.nb_sup.size() != ks.nb_ids.size())
      return absl::DataLossError("snapshot: neighbour support size mismatch");
    if (!ks.seq_off.empty() && (ks.seq_off.size() != size_t(ks.count) + 1 || ks.seq_off.back() != ks.seq_ids.size() ||
                                ks.seq_ids.size() != ks.seq_w.size()))
      return absl::DataLossError("snapshot: session neighbour index size mismatch");
  }
  ar.Get("user_eng_off", &snap->user_eng_off);
  ar.Get("user_eng", &snap->user_eng);
  ar.Get("gram", &snap->gram);
  snap->viewer_emb.assign(size_t(snap->kinds[0].count) * dim, 0.f);
  snap->viewer_has_emb.assign(snap->kinds[0].count, 0);
  snap->load_report.arrays = since(t_start);
  snap->load_report.mapped_bytes = ar.viewed_bytes();
  snap->load_report.copied_bytes = ar.copied_bytes();
  const auto t_features = SteadyClock::now();

  AFF_ASSIGN_OR_RETURN(auto store, OpenRocksFeatureStore(dir + "/features", true, snap->groups));
  auto in_range = [&](Ref r) { return r.id() < snap->kinds[int(r.kind())].count; };
  AFF_RETURN_IF_ERROR(store->Scan(kGroupViewerEmbedding, [&](const FeatureRecord& r) {
    if (r.entity.kind() != Kind::kUser || !in_range(r.entity) || int(r.values.size()) != dim) return;
    std::copy(r.values.begin(), r.values.end(), &snap->viewer_emb[size_t(r.entity.id()) * dim]);
    snap->viewer_has_emb[r.entity.id()] = 1;
  }));
  AFF_RETURN_IF_ERROR(store->Scan(kGroupEntityEmbedding, [&](const FeatureRecord& r) {
    if (!in_range(r.entity) || int(r.values.size()) != dim) return;
    KindSnapshot& ks = snap->kinds[int(r.entity.kind())];
    std::copy(r.values.begin(), r.values.end(), &ks.emb[size_t(r.entity.id()) * dim]);
    ks.has_emb[r.entity.id()] = 1;
  }));
  AFF_RETURN_IF_ERROR(store->Scan(kGroupPopularity, [&](const FeatureRecord& r) {
    if (!in_range(r.entity) || r.values.size() != 2) return;
    KindSnapshot& ks = snap->kinds[int(r.entity.kind())];
    ks.popularity[r.entity.id()] = r.values[0];
    ks.popularity_pct[r.entity.id()] = r.values[1];
  }));
  AFF_RETURN_IF_ERROR(store->Scan(kGroupGraph, [&](const FeatureRecord& r) {
    if (!in_range(r.entity) || r.values.size() != 3) return;
    KindSnapshot& ks = snap->kinds[int(r.entity.kind())];
    ks.followers[r.entity.id()] = r.values[0];
    ks.following[r.entity.id()] = r.values[1];
    ks.engagers[r.entity.id()] = r.values[2];
  }));
  snap->load_report.features = since(t_features);
  const auto t_ann = SteadyClock::now();
  for (int k = 0; k < kNumKinds; ++k) {
    std::string path = dir + "/ann_" + std::string(KindName(Kind(k))) + ".hnsw";
    if (!fs::exists(path)) continue;
    AFF_ASSIGN_OR_RETURN(snap->kinds[k].ann, AnnIndex::Load(path, dim));
  }
  snap->load_report.ann = since(t_ann);
  snap->load_report.total = since(t_start);
  return snap;
}

absl::StatusOr<std::shared_ptr<const Snapshot>> LoadCurrentSnapshot(const std::string& data_dir) {
  std::string v = CurrentSnapshotVersion(data_dir);
  if (v.empty()) return std::shared_ptr<const Snapshot>();
  return LoadSnapshot(data_dir + "/snapshots/" + v);
}

SnapshotManager::SnapshotManager(std::string data_dir, int poll_ms, int ef_search,
                                 std::map<std::string, FeatureGroupSettings> settings)
    : data_dir_(std::move(data_dir)),
      ef_search_(ef_search),
      settings_(std::move(settings)),
      poller_(poll_ms, [this] { return Load(); }) {}

SnapshotManager::~SnapshotManager() { Stop(); }

absl::Status SnapshotManager::LoadInitial() { return Refresh().status(); }

absl::StatusOr<bool> SnapshotManager::Refresh() { return poller_.RunOnce(); }

absl::StatusOr<bool> SnapshotManager::Load() {
  std::string v = CurrentSnapshotVersion(data_dir_);
  auto cur = Get();
  if (v.empty() || (cur && cur->version == v)) return false;
  AFF_ASSIGN_OR_RETURN(auto loaded, LoadSnapshot(data_dir_ + "/snapshots/" + v, settings_));
  for (const auto& ks : loaded->kinds)
    if (ks.ann) ks.ann->SetEf(size_t(ef_search_));
  current_.store(loaded, std::memory_order_release);
  return true;
}

void SnapshotManager::Start() { poller_.Start(); }

void SnapshotManager::Stop() { poller_.Stop(); }

}  // namespace affinity
