// Writing a snapshot: a whole one (`affinity batch`), or the served one with
// one group replaced and every other part carried over (`affinity backfill`).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "base/json_writer.h"
#include "base/section_file.h"
#include "base/status.h"
#include "base/strings.h"
#include "features/batch_columns.h"
#include "features/feature_store.h"
#include "features/snapshot.h"
#include "features/snapshot_layout.h"

namespace affinity {
namespace fs = std::filesystem;
using snapshot_layout::KindKey;
using snapshot_layout::kArrays;
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

// Exactly n values: what the snapshot holds, zeros past its end.
template <typename T>
std::vector<T> Exactly(const FrozenArray<T>& a, size_t n) {
  std::vector<T> v(n, T(0));
  std::copy_n(a.begin(), std::min(n, a.size()), v.begin());
  return v;
}

void AddDenseGroups(const Snapshot& snap, SectionWriter* w) {
  ForEachBatchArray(snap, [&](const BatchColumn&, const std::string& section, const auto& array, uint32_t count,
                              size_t width) { w->Add(section, Exactly(array, size_t(count) * width)); });
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

// One batch group's records: one per entity that holds a value (a viewer or
// entity embedding it trained, as its flag column says; a popularity above 0,
// a graph degree above 0). With `had` (a backfill replacing the group in a
// store that holds the served version's records: the entities that have one),
// an entity whose new values are all zero gets a record of zeros over its old one.
absl::Status WriteGroupRecords(FeatureStore& store, const Snapshot& snap, const std::string& group,
                               const std::set<uint32_t>* had_record) {
  const std::string prov = snap.GroupProvenance(group);
  const int64_t ts = snap.GroupFreshnessMs(group);
  std::vector<FeatureRecord> recs;
  auto add = [&](Ref r, std::vector<float> values) -> absl::Status {
    recs.push_back({r, std::move(values), ts, prov});
    if (recs.size() < 50000) return absl::OkStatus();
    auto s = store.Put(group, recs);
    recs.clear();
    return s;
  };
  const std::vector<const BatchColumn*> columns = BatchColumnsOf(group);
  for (int k = 0; k < kNumKinds; ++k) {
    // The group's columns of this kind, in the order of its record's values.
    std::vector<std::pair<const FrozenArray<float>*, size_t>> cols;  // with their widths
    const FrozenArray<uint8_t>* has_record = nullptr;
    for (const BatchColumn* c : columns) {
      if (const FrozenArray<float>* col = c->Floats(snap, k)) cols.push_back({col, c->Width(snap.dim)});
      if (const FrozenArray<uint8_t>* flags = c->Flags(snap, k)) has_record = flags;
    }
    if (cols.empty()) continue;
    for (uint32_t i = 0; i < snap.kinds[k].count; ++i) {
      if (has_record && (i >= has_record->size() || !(*has_record)[i])) continue;
      std::vector<float> v;
      bool any = false;
      for (const auto& [col, width] : cols)
        for (size_t j = size_t(i) * width; j < size_t(i + 1) * width; ++j) {
          v.push_back(j < col->size() ? (*col)[j] : 0.f);
          any = any || v.back() > 0;
        }
      if (has_record || any || (had_record && had_record->count(Ref(Kind(k), i).bits)))
        AFF_RETURN_IF_ERROR(add(Ref(Kind(k), i), std::move(v)));
    }
  }
  if (recs.empty()) return absl::OkStatus();
  return store.Put(group, recs);
}

// features/: the feature groups' records, through the feature store.
absl::Status WriteFeatures(const Snapshot& snap, const std::string& tmp) {
  AFF_ASSIGN_OR_RETURN(auto store, OpenRocksFeatureStore(tmp + "/features", false, snap.groups));
  for (const FeatureGroup& group : snap.groups)
    AFF_RETURN_IF_ERROR(WriteGroupRecords(*store, snap, group.name, nullptr));
  return store->Seal();
}

// A copy of the sealed RocksDB directory `from` at `to` whose table files are
// hard links (they are immutable; a copy where links are not possible) and
// whose other files (CURRENT, MANIFEST, OPTIONS) are copied: the same
// database, as RocksDB's own checkpoints make one. Its logs are left behind.
absl::Status LinkDatabase(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::create_directories(to, ec);
  if (ec) return absl::InternalError("snapshot: cannot create " + to + ": " + ec.message());
  for (const auto& entry : fs::directory_iterator(from, ec)) {
    const std::string name = entry.path().filename().string();
    auto ends_with = [&](std::string_view suffix) {
      return name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    if (name == "LOCK" || name.rfind("LOG", 0) == 0 || ends_with(".log")) continue;
    const std::string dst = to + "/" + name;
    if (ends_with(".sst")) {
      fs::create_hard_link(entry.path(), dst, ec);
      if (!ec) continue;
      ec.clear();
    }
    fs::copy_file(entry.path(), dst, ec);
    if (ec) return absl::InternalError("snapshot: cannot copy " + entry.path().string() + ": " + ec.message());
  }
  if (ec) return absl::InternalError("snapshot: cannot list " + from + ": " + ec.message());
  return absl::OkStatus();
}

// The bytes of `group`'s sections of arrays.bin in `snap`: its dense columns
// by kind and, for popularity, each kind's list of the most popular.
std::map<std::string, std::string> GroupSections(const Snapshot& snap, const std::string& group) {
  std::map<std::string, std::string> out;
  auto bytes = [](const auto& v) {
    return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(v[0]));
  };
  for (int k = 0; k < kNumKinds; ++k) {
    const KindSnapshot& ks = snap.kinds[k];
    for (const BatchColumn* c : BatchColumnsOf(group))
      if (const FrozenArray<float>* col = c->Floats(snap, k))
        out[c->Section(k)] = bytes(Exactly(*col, ks.count * c->Width(snap.dim)));
    if (group == kGroupPopularity) out[KindKey(k, "popular")] = bytes(ks.popular);
  }
  return out;
}

// Copies the file `from` to `to` in the kernel (copy_file_range: its bytes never
// pass through this process), or by reads and writes where that is refused.
absl::Status CopyFileBytes(const std::string& from, int to_fd) {
  const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return absl::InternalError("snapshot: cannot open " + from + ": " + std::strerror(errno));
  bool fallback = false;
  for (;;) {
    const ssize_t n = ::copy_file_range(in, nullptr, to_fd, nullptr, size_t(1) << 30, 0);
    if (n > 0) continue;
    if (n == 0) break;
    if (!fallback && (errno == ENOSYS || errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP)) {
      fallback = true;
      ::lseek(in, 0, SEEK_SET);
      ::lseek(to_fd, 0, SEEK_SET);
    }
    if (!fallback) {
      ::close(in);
      return absl::InternalError("snapshot: cannot copy " + from + ": " + std::strerror(errno));
    }
    char buf[1 << 16];
    ssize_t got;
    while ((got = ::read(in, buf, sizeof buf)) > 0)
      if (::write(to_fd, buf, size_t(got)) != got) got = -1;
    ::close(in);
    return got == 0 ? absl::OkStatus() : absl::InternalError("snapshot: cannot copy " + from);
  }
  ::close(in);
  return absl::OkStatus();
}

// arrays.bin of the new version as a copy of the served one (`from`, of this
// build's format) with `sections` overwritten in place and their checksums
// recomputed: the file's other sections are the served bytes, and only the
// group's pass through this process. False (nothing written) when the served
// file is of an earlier format, or lacks one of the sections or holds it with
// another length (a narrower window can shorten a popularity list): the caller
// then writes the file whole.
absl::StatusOr<bool> PatchArrays(const std::string& from, const std::string& to,
                                 const std::map<std::string, std::string>& sections) {
  // (The served file's checksums were checked when it was loaded.)
  const int fd = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::string magic(kArrays.magic.size(), '\0');
  if (::pread(fd, magic.data(), magic.size(), 0) != ssize_t(magic.size()) || magic != kArrays.magic) {
    ::close(fd);
    return false;
  }
  struct Place {
    uint64_t header_at, data_at;
    const std::string* bytes;
  };
  std::vector<Place> places;
  uint64_t pos = kArrays.magic.size();
  const uint64_t size = uint64_t(::lseek(fd, 0, SEEK_END));
  while (pos + 12 <= size && places.size() < sections.size()) {
    uint32_t nl = 0;
    uint64_t bytes = 0;
    std::string name;
    if (::pread(fd, &nl, 4, off_t(pos)) != 4 || nl > 4096) break;
    name.resize(nl);
    if (::pread(fd, name.data(), nl, off_t(pos + 4)) != ssize_t(nl) ||
        ::pread(fd, &bytes, 8, off_t(pos + 4 + nl)) != 8)
      break;
    const uint64_t data_at = (pos + 4 + nl + 8 + kArrays.align - 1) / kArrays.align * kArrays.align;
    if (auto it = sections.find(name); it != sections.end()) {
      if (it->second.size() != bytes) break;
      places.push_back({pos, data_at, &it->second});
    }
    pos = data_at + bytes + 4;
  }
  ::close(fd);
  if (places.size() != sections.size()) return false;
  const int out = ::open(to.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) return absl::InternalError("snapshot: cannot create " + to + ": " + std::strerror(errno));
  absl::Status st = CopyFileBytes(from, out);
  for (const Place& p : places) {
    if (!st.ok()) break;
    // The checksum covers the name length, name, byte count, padding and data.
    std::string header(p.data_at - p.header_at, '\0');
    const std::string& data = *p.bytes;
    if (::pread(out, header.data(), header.size(), off_t(p.header_at)) != ssize_t(header.size()) ||
        ::pwrite(out, data.data(), data.size(), off_t(p.data_at)) != ssize_t(data.size())) {
      st = absl::InternalError("snapshot: cannot patch " + to);
      break;
    }
    const uint32_t sum = Crc32c(data.data(), data.size(), Crc32c(header.data(), header.size()));
    if (::pwrite(out, &sum, 4, off_t(p.data_at + data.size())) != 4)
      st = absl::InternalError("snapshot: cannot patch " + to);
  }
  if (st.ok() && ::fsync(out) != 0) st = absl::InternalError("snapshot: cannot sync " + to);
  ::close(out);
  if (!st.ok()) return st;
  return true;
}

// A file of the served version, hard-linked (or copied) into the new one.
absl::Status LinkFile(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::create_hard_link(from, to, ec);
  if (ec) {
    ec.clear();
    fs::copy_file(from, to, ec);
  }
  if (ec) return absl::InternalError("snapshot: cannot carry " + from + " over: " + ec.message());
  return absl::OkStatus();
}

std::string ManifestJson(const Snapshot& snap, const std::string& manifest_extra_json,
                         const std::map<std::string, uint64_t>& files) {
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
  m.Key("files").BeginObject();  // checked at load: a missing or truncated file refuses the version
  for (const auto& [name, bytes] : files) m.Key(name).Uint(bytes);
  m.EndObject();
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

// Writes the manifest, then publishes: renames tmp into place, then replaces CURRENT.
absl::StatusOr<std::string> Finish(const std::string& root, const std::string& tmp, Snapshot& snap,
                                   const std::string& manifest_extra_json, int keep, SnapshotPointer& pointer) {
  std::error_code ec;
  std::map<std::string, uint64_t> files;  // the version's own files (not features/, RocksDB's) by size
  for (const auto& e : fs::directory_iterator(tmp, ec))
    if (e.is_regular_file()) files[e.path().filename().string()] = e.file_size();
  if (ec) return absl::InternalError("snapshot: cannot list " + tmp + ": " + ec.message());
  snap.manifest_json = ManifestJson(snap, manifest_extra_json, files);
  if (!WriteFileAtomic(tmp + "/manifest.json", snap.manifest_json))
    return absl::InternalError("snapshot: cannot write manifest");
  const std::string final_dir = root + "/" + snap.version;
  fs::rename(tmp, final_dir, ec);
  if (ec) return absl::InternalError("snapshot: cannot rename " + tmp + ": " + ec.message());
  AFF_RETURN_IF_ERROR(pointer.Set(snap.version));
  PruneVersions(root, snap.version, keep);
  return snap.version;
}

}  // namespace

absl::StatusOr<std::string> PublishSnapshot(const std::string& data_dir, Snapshot& snap,
                                            const std::string& manifest_extra_json, int keep,
                                            std::shared_ptr<SnapshotPointer> pointer) {
  const std::string root = data_dir + "/snapshots";
  std::error_code ec;
  fs::create_directories(root, ec);
  snap.version = NextVersion(root);
  const std::string tmp = root + "/tmp-" + snap.version;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) return absl::InternalError("snapshot: cannot create " + tmp);
  AFF_RETURN_IF_ERROR(WriteArrays(snap, tmp));
  snap.groups = BatchFeatureGroups(snap.dim);
  AFF_RETURN_IF_ERROR(WriteFeatures(snap, tmp));
  for (int k = 0; k < kNumKinds; ++k)
    if (snap.kinds[k].ann)
      AFF_RETURN_IF_ERROR(snap.kinds[k].ann->Save(tmp + "/ann_" + std::string(KindName(Kind(k))) + ".hnsw"));
  return Finish(root, tmp, snap, manifest_extra_json, keep, *PointerOr(std::move(pointer), data_dir));
}

absl::StatusOr<std::string> PublishSnapshotUpdate(const std::string& data_dir, Snapshot& snap,
                                                  const std::string& from_dir, const std::string& group,
                                                  const std::string& manifest_extra_json, int keep,
                                            std::shared_ptr<SnapshotPointer> pointer) {
  if (group != kGroupPopularity && group != kGroupGraph)
    return absl::InvalidArgumentError("snapshot: only the popularity and graph groups are replaced on their own");
  const std::string root = data_dir + "/snapshots";
  std::error_code ec;
  snap.version = NextVersion(root);
  const std::string tmp = root + "/tmp-" + snap.version;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) return absl::InternalError("snapshot: cannot create " + tmp);
  AFF_ASSIGN_OR_RETURN(bool patched,
                       PatchArrays(from_dir + "/arrays.bin", tmp + "/arrays.bin", GroupSections(snap, group)));
  if (!patched) AFF_RETURN_IF_ERROR(WriteArrays(snap, tmp));
  snap.groups = BatchFeatureGroups(snap.dim);
  AFF_RETURN_IF_ERROR(LinkDatabase(from_dir + "/features", tmp + "/features"));
  {
    AFF_ASSIGN_OR_RETURN(auto store, OpenRocksFeatureStore(tmp + "/features", false, snap.groups));
    std::set<uint32_t> had;  // the entities with a record of the group in the served version
    AFF_RETURN_IF_ERROR(store->Scan(group, [&](const FeatureRecord& r) { had.insert(r.entity.bits); }));
    AFF_RETURN_IF_ERROR(WriteGroupRecords(*store, snap, group, &had));
    AFF_RETURN_IF_ERROR(store->Seal());
  }
  for (int k = 0; k < kNumKinds; ++k) {
    const std::string ann = "/ann_" + std::string(KindName(Kind(k))) + ".hnsw";
    for (const std::string& file : {ann, ann + ".sum"})
      if (fs::exists(from_dir + file, ec)) AFF_RETURN_IF_ERROR(LinkFile(from_dir + file, tmp + file));
  }
  return Finish(root, tmp, snap, manifest_extra_json, keep, *PointerOr(std::move(pointer), data_dir));
}

}  // namespace affinity
