#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <cstring>

#include "base/status.h"
#include "features/feature_store.h"

namespace affinity {
namespace {

std::string Key(const std::string& group, Ref r) {
  std::string k = group;
  k.push_back('\0');
  for (int s = 24; s >= 0; s -= 8) k.push_back(char((r.bits >> s) & 0xFF));
  return k;
}

std::string Encode(const FeatureRecord& r) {
  std::string v;
  uint16_t n = uint16_t(r.values.size());
  v.append(reinterpret_cast<const char*>(&n), 2);
  if (!r.values.empty()) v.append(reinterpret_cast<const char*>(r.values.data()), r.values.size() * 4);
  v.append(reinterpret_cast<const char*>(&r.freshness_ts), 8);
  v.append(r.provenance);
  return v;
}

bool Decode(std::string_view key, std::string_view v, FeatureRecord* r) {
  if (key.size() < 5 || v.size() < 10) return false;
  uint32_t bits = 0;
  for (size_t i = key.size() - 4; i < key.size(); ++i) bits = (bits << 8) | uint8_t(key[i]);
  r->entity = Ref::FromBits(bits);
  uint16_t n;
  std::memcpy(&n, v.data(), 2);
  if (v.size() < 10u + 4u * n) return false;
  r->values.resize(n);
  if (n) std::memcpy(r->values.data(), v.data() + 2, 4u * n);
  std::memcpy(&r->freshness_ts, v.data() + 2 + 4 * n, 8);
  r->provenance.assign(v.data() + 10 + 4 * n, v.size() - 10 - 4 * n);
  return true;
}

class RocksFeatureStore final : public FeatureStore {
 public:
  RocksFeatureStore(std::unique_ptr<rocksdb::DB> db, std::vector<FeatureGroup> groups)
      : db_(std::move(db)), groups_(std::move(groups)) {}

  absl::Status Put(const std::string& group, const std::vector<FeatureRecord>& records) override {
    const FeatureGroup* g = FindFeatureGroup(groups_, group);
    if (!g) return absl::InvalidArgumentError("feature group '" + group + "' is not declared");
    rocksdb::WriteBatch batch;
    for (const auto& r : records) {
      if (r.values.size() != g->components.size())
        return absl::InvalidArgumentError("feature group '" + group + "' has " +
                                          std::to_string(g->components.size()) + " components, got " +
                                          std::to_string(r.values.size()));
      batch.Put(Key(group, r.entity), Encode(r));
    }
    rocksdb::WriteOptions wo;
    wo.disableWAL = true;  // durable at Seal(), before the snapshot is published
    auto s = db_->Write(wo, &batch);
    if (!s.ok()) return absl::InternalError("feature store: " + s.ToString());
    return absl::OkStatus();
  }

  absl::Status Seal() override {
    rocksdb::FlushOptions fo;
    fo.wait = true;
    auto s = db_->Flush(fo);
    if (s.ok()) {
      rocksdb::CompactRangeOptions co;
      co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
      s = db_->CompactRange(co, nullptr, nullptr);
    }
    if (!s.ok()) return absl::InternalError("feature store: sealing: " + s.ToString());
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<FeatureRecord>> Get(const std::string& group, Ref entity) const override {
    std::string v;
    auto s = db_->Get(rocksdb::ReadOptions(), Key(group, entity), &v);
    if (s.IsNotFound()) return std::optional<FeatureRecord>();
    if (!s.ok()) return absl::InternalError("feature store: " + s.ToString());
    FeatureRecord r;
    std::string k = Key(group, entity);
    if (!Decode(k, v, &r)) return absl::DataLossError("feature store: undecodable record");
    return std::optional<FeatureRecord>(std::move(r));
  }

  absl::Status Scan(const std::string& group, const std::function<void(const FeatureRecord&)>& fn) const override {
    std::string prefix = group;
    prefix.push_back('\0');
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    FeatureRecord r;
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      if (!Decode(it->key().ToStringView(), it->value().ToStringView(), &r))
        return absl::DataLossError("feature store: undecodable record in group " + group);
      fn(r);
    }
    if (!it->status().ok()) return absl::InternalError("feature store: " + it->status().ToString());
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<FeatureGroup> groups_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<FeatureStore>> OpenRocksFeatureStore(const std::string& path, bool read_only,
                                                                   std::vector<FeatureGroup> groups) {
  rocksdb::Options options;
  options.create_if_missing = !read_only;
  options.compression = rocksdb::kLZ4Compression;
  options.max_open_files = 64;
  rocksdb::DB* raw = nullptr;
  auto s = read_only ? rocksdb::DB::OpenForReadOnly(options, path, &raw) : rocksdb::DB::Open(options, path, &raw);
  if (!s.ok()) return absl::InternalError("feature store " + path + ": " + s.ToString());
  return std::unique_ptr<FeatureStore>(new RocksFeatureStore(std::unique_ptr<rocksdb::DB>(raw), std::move(groups)));
}

}  // namespace affinity
