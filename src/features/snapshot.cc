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
#include "features/snapshot_layout.h"

namespace affinity {
namespace fs = std::filesystem;
using snapshot_layout::DenseGroup;
using snapshot_layout::DenseGroups;
using snapshot_layout::KindKey;
using snapshot_layout::kArrays;
using snapshot_layout::kArraysV1;
using snapshot_layout::kArraysV2;
namespace {

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

// Each file the manifest lists (manifests written since they list them) is
// there with the size it was written with: a missing ANN index or an arrays.bin
// cut at a section's end is caught before anything is read.
absl::Status CheckListedFiles(const std::string& dir, const std::string& manifest) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::object files;
  if (parser.parse(manifest).get(doc)) return absl::DataLossError("snapshot: " + dir + "/manifest.json is not valid JSON");
  if (doc["files"].get(files)) return absl::OkStatus();  // written before files were listed
  for (auto [name, bytes] : files) {
    uint64_t want = 0;
    const std::string file(name);
    if (bytes.get(want)) return absl::DataLossError("snapshot: manifest.json lists " + file + " without its size");
    std::error_code ec;
    const uint64_t got = std::filesystem::file_size(dir + "/" + file, ec);
    if (ec) return absl::DataLossError("snapshot: " + file + " is missing from " + dir + " (its manifest lists it)");
    if (got != want)
      return absl::DataLossError("snapshot: " + file + " in " + dir + " holds " + std::to_string(got) +
                                 " bytes, its manifest says " + std::to_string(want) + " (truncated or replaced)");
  }
  return absl::OkStatus();
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

}  // namespace

absl::StatusOr<std::shared_ptr<const Snapshot>> LoadSnapshot(const std::string& dir,
                                                          const std::map<std::string, FeatureGroupSettings>& settings) {
  AFF_ASSIGN_OR_RETURN(std::shared_ptr<Snapshot> snap, LoadSnapshotForUpdate(dir));
  AFF_RETURN_IF_ERROR(ApplyFeatureSettings(settings, &snap->groups));
  return std::shared_ptr<const Snapshot>(std::move(snap));
}

absl::StatusOr<std::shared_ptr<Snapshot>> LoadSnapshotForUpdate(const std::string& dir, bool with_ann) {
  using SteadyClock = std::chrono::steady_clock;
  const auto t_start = SteadyClock::now();
  auto since = [](SteadyClock::time_point t) { return std::chrono::duration<double>(SteadyClock::now() - t).count(); };
  auto snap = std::make_shared<Snapshot>();
  auto manifest = ReadFile(dir + "/manifest.json");
  if (!manifest) return absl::NotFoundError("snapshot: no manifest in " + dir);
  snap->manifest_json = *manifest;
  AFF_RETURN_IF_ERROR(CheckListedFiles(dir, *manifest));
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
  for (int k = 0; k < kNumKinds && with_ann; ++k) {
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

}  // namespace affinity
