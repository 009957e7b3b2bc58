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
#include "features/batch_columns.h"
#include "features/feature_store.h"
#include "features/snapshot_layout.h"
#include "features/feature_settings.h"

namespace affinity {
namespace fs = std::filesystem;
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

std::string CurrentSnapshotVersion(const std::string& data_dir) { return FileSnapshotPointer(data_dir).Current(); }

namespace {

bool HasDenseGroups(const SectionReader& ar) { return ar.Has("dense.viewer_has_emb"); }

absl::Status MapDenseGroups(SectionReader& ar, Snapshot* snap) {
  absl::Status status;
  ForEachBatchArray(*snap, [&](const BatchColumn&, const std::string& section, auto& array, uint32_t count,
                               size_t width) {
    if (!status.ok()) return;
    ar.Get(section, &array);
    const size_t want = size_t(count) * width;
    if (array.size() != want)
      status = absl::DataLossError("snapshot: " + section + " holds " + std::to_string(array.size()) +
                                   " values, its entities need " + std::to_string(want));
  });
  return status;
}

// The batch groups from the snapshot's feature store, record by record, into
// the columns BatchColumns lists (zeros where a group holds no record).
absl::Status ScanFeatureStore(const std::string& path, Snapshot* snap) {
  const int dim = snap->dim;
  AFF_ASSIGN_OR_RETURN(auto store, OpenRocksFeatureStore(path, true, snap->groups));
  const std::vector<BatchColumn>& columns = BatchColumns();
  std::array<std::vector<std::vector<float>>, kNumKinds> floats;
  std::array<std::vector<std::vector<uint8_t>>, kNumKinds> flags;
  for (int k = 0; k < kNumKinds; ++k) {
    floats[k].resize(columns.size());
    flags[k].resize(columns.size());
    for (size_t c = 0; c < columns.size(); ++c) {
      if (!columns[c].Of(k)) continue;
      if (columns[c].is_flag())
        flags[k][c].assign(snap->kinds[k].count, 0);
      else
        floats[k][c].assign(size_t(snap->kinds[k].count) * columns[c].Width(dim), 0.f);
    }
  }
  std::vector<std::string> store_groups;
  for (const BatchColumn& g : columns)
    if (std::find(store_groups.begin(), store_groups.end(), g.group) == store_groups.end())
      store_groups.push_back(g.group);
  for (const std::string& group : store_groups) {
    size_t values = 0;  // what one of its records holds
    for (const BatchColumn& g : columns)
      if (group == g.group && !g.is_flag()) values = std::max(values, g.first_value + g.Width(dim));
    AFF_RETURN_IF_ERROR(store->Scan(group, [&](const FeatureRecord& r) {
      const int k = int(r.entity.kind());
      const size_t id = r.entity.id();
      if (id >= snap->kinds[k].count || r.values.size() != values) return;
      for (size_t c = 0; c < columns.size(); ++c) {
        const BatchColumn& g = columns[c];
        if (group != g.group || !g.Of(k)) continue;
        const size_t width = g.Width(dim);
        if (g.is_flag())
          flags[k][c][id] = 1;
        else
          std::copy_n(r.values.begin() + long(g.first_value), width, floats[k][c].begin() + long(id * width));
      }
    }));
  }
  for (int k = 0; k < kNumKinds; ++k)
    for (size_t c = 0; c < columns.size(); ++c) {
      if (FrozenArray<float>* to = columns[c].Floats(*snap, k)) *to = std::move(floats[k][c]);
      if (FrozenArray<uint8_t>* to = columns[c].Flags(*snap, k)) *to = std::move(flags[k][c]);
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
