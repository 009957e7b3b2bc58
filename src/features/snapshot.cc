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

// The batch groups' values as dense arrays by dense id, as a server holds
// them, written into arrays.bin beside the feature store's records (the same
// values, from the same snapshot, in the same publish). A server maps these;
// snapshots written before they were kept are read from the feature store.
// Each column also says where the feature store keeps it: which values of its
// group's record (a flag column: 1 where the group holds a record).
struct DenseGroup {
  const char* name;
  FrozenArray<float> KindSnapshot::*floats = nullptr;
  FrozenArray<uint8_t> KindSnapshot::*flags = nullptr;
  size_t width = 1;  // values per entity (dim for embeddings)
  const char* store_group;
  size_t first_value = 0;  // its values in the record: [first_value, first_value + width)
};
std::vector<DenseGroup> DenseGroups(int dim) {
  return {{"emb", &KindSnapshot::emb, nullptr, size_t(dim), kGroupEntityEmbedding, 0},
          {"has_emb", nullptr, &KindSnapshot::has_emb, 1, kGroupEntityEmbedding},
          {"popularity", &KindSnapshot::popularity, nullptr, 1, kGroupPopularity, 0},
          {"popularity_pct", &KindSnapshot::popularity_pct, nullptr, 1, kGroupPopularity, 1},
          {"followers", &KindSnapshot::followers, nullptr, 1, kGroupGraph, 0},
          {"following", &KindSnapshot::following, nullptr, 1, kGroupGraph, 1},
          {"engagers", &KindSnapshot::engagers, nullptr, 1, kGroupGraph, 2}};
}

// Exactly n values: what the snapshot holds, zeros past its end.
template <typename T>
std::vector<T> Exactly(const FrozenArray<T>& a, size_t n) {
  std::vector<T> v(n, T(0));
  std::copy_n(a.begin(), std::min(n, a.size()), v.begin());
  return v;
}

void AddDenseGroups(const Snapshot& snap, SectionWriter* w) {
  for (int k = 0; k < kNumKinds; ++k) {
    const KindSnapshot& ks = snap.kinds[k];
    for (const DenseGroup& g : DenseGroups(snap.dim)) {
      const size_t n = size_t(ks.count) * g.width;
      if (g.floats) w->Add(KindKey(k, ("dense." + std::string(g.name)).c_str()), Exactly(ks.*g.floats, n));
      else w->Add(KindKey(k, ("dense." + std::string(g.name)).c_str()), Exactly(ks.*g.flags, n));
    }
  }
  const size_t users = snap.kinds[0].count;
  w->Add("dense.viewer_emb", Exactly(snap.viewer_emb, users * size_t(snap.dim)));
  w->Add("dense.viewer_has_emb", Exactly(snap.viewer_has_emb, users));
}

bool HasDenseGroups(const SectionReader& ar) { return ar.Has("dense.viewer_has_emb"); }

absl::Status MapDenseGroups(SectionReader& ar, Snapshot* snap) {
  auto check = [](size_t got, size_t want, const std::string& name) {
    return got == want ? absl::OkStatus()
                       : absl::DataLossError("snapshot: " + name + " holds " + std::to_string(got) +
                                             " values, its entities need " + std::to_string(want));
  };
  for (int k = 0; k < kNumKinds; ++k) {
    KindSnapshot& ks = snap->kinds[k];
    for (const DenseGroup& g : DenseGroups(snap->dim)) {
      const std::string name = KindKey(k, ("dense." + std::string(g.name)).c_str());
      const size_t want = size_t(ks.count) * g.width;
      if (g.floats) {
        ar.Get(name, &(ks.*g.floats));
        AFF_RETURN_IF_ERROR(check((ks.*g.floats).size(), want, name));
      } else {
        ar.Get(name, &(ks.*g.flags));
        AFF_RETURN_IF_ERROR(check((ks.*g.flags).size(), want, name));
      }
    }
  }
  const size_t users = snap->kinds[0].count;
  ar.Get("dense.viewer_emb", &snap->viewer_emb);
  ar.Get("dense.viewer_has_emb", &snap->viewer_has_emb);
  AFF_RETURN_IF_ERROR(check(snap->viewer_emb.size(), users * size_t(snap->dim), "dense.viewer_emb"));
  return check(snap->viewer_has_emb.size(), users, "dense.viewer_has_emb");
}

// The batch groups from the snapshot's feature store, record by record, into
// the columns DenseGroups lists (zeros where a group holds no record).
absl::Status ScanFeatureStore(const std::string& path, Snapshot* snap) {
  const int dim = snap->dim;
  AFF_ASSIGN_OR_RETURN(auto store, OpenRocksFeatureStore(path, true, snap->groups));
  auto in_range = [&](Ref r) { return r.id() < snap->kinds[int(r.kind())].count; };
  std::vector<float> viewer_emb(size_t(snap->kinds[0].count) * dim, 0.f);
  std::vector<uint8_t> viewer_has_emb(snap->kinds[0].count, 0);
  AFF_RETURN_IF_ERROR(store->Scan(kGroupViewerEmbedding, [&](const FeatureRecord& r) {
    if (r.entity.kind() != Kind::kUser || !in_range(r.entity) || int(r.values.size()) != dim) return;
    std::copy(r.values.begin(), r.values.end(), &viewer_emb[size_t(r.entity.id()) * dim]);
    viewer_has_emb[r.entity.id()] = 1;
  }));
  snap->viewer_emb = std::move(viewer_emb);
  snap->viewer_has_emb = std::move(viewer_has_emb);

  const std::vector<DenseGroup> columns = DenseGroups(dim);
  std::array<std::vector<std::vector<float>>, kNumKinds> floats;
  std::array<std::vector<std::vector<uint8_t>>, kNumKinds> flags;
  for (int k = 0; k < kNumKinds; ++k) {
    floats[k].resize(columns.size());
    flags[k].resize(columns.size());
    for (size_t c = 0; c < columns.size(); ++c) {
      if (columns[c].floats)
        floats[k][c].assign(size_t(snap->kinds[k].count) * columns[c].width, 0.f);
      else
        flags[k][c].assign(snap->kinds[k].count, 0);
    }
  }
  std::vector<std::string> store_groups;
  for (const DenseGroup& g : columns)
    if (std::find(store_groups.begin(), store_groups.end(), g.store_group) == store_groups.end())
      store_groups.push_back(g.store_group);
  for (const std::string& group : store_groups) {
    size_t values = 0;  // what one of its records holds
    for (const DenseGroup& g : columns)
      if (group == g.store_group && g.floats) values = std::max(values, g.first_value + g.width);
    AFF_RETURN_IF_ERROR(store->Scan(group, [&](const FeatureRecord& r) {
      if (!in_range(r.entity) || r.values.size() != values) return;
      const int k = int(r.entity.kind());
      const size_t id = r.entity.id();
      for (size_t c = 0; c < columns.size(); ++c) {
        const DenseGroup& g = columns[c];
        if (group != g.store_group) continue;
        if (g.floats)
          std::copy_n(r.values.begin() + long(g.first_value), g.width, floats[k][c].begin() + long(id * g.width));
        else
          flags[k][c][id] = 1;
      }
    }));
  }
  for (int k = 0; k < kNumKinds; ++k)
    for (size_t c = 0; c < columns.size(); ++c) {
      const DenseGroup& g = columns[c];
      if (g.floats)
        snap->kinds[k].*g.floats = std::move(floats[k][c]);
      else
        snap->kinds[k].*g.flags = std::move(flags[k][c]);
    }
  return absl::OkStatus();
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
  AddDenseGroups(snap, &aw);
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
  const auto t_features = SteadyClock::now();
  if (HasDenseGroups(ar)) {
    AFF_RETURN_IF_ERROR(MapDenseGroups(ar, snap.get()));
  } else {
    AFF_RETURN_IF_ERROR(ScanFeatureStore(dir + "/features", snap.get()));
    snap->load_report.groups_scanned = true;
  }
  snap->load_report.arrays = std::chrono::duration<double>(t_features - t_start).count();
  snap->load_report.mapped_bytes = ar.viewed_bytes();
  snap->load_report.copied_bytes = ar.copied_bytes();
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
  if (on_swap_) on_swap_(*loaded, cur ? cur->version : std::string());
  return true;
}

void SnapshotManager::Start() { poller_.Start(); }

void SnapshotManager::Stop() { poller_.Stop(); }

}  // namespace affinity
