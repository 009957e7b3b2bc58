#include "store/rocks_forget.h"

#include <rocksdb/write_batch.h>

#include <cstring>
#include <memory>

#include "base/status.h"
#include "store/record_codecs.h"
#include "store/rocks_errors.h"

namespace affinity {

std::string ForgottenKey(Ref ref) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string key = "\x01" "forgotten/";
  for (int shift = 28; shift >= 0; shift -= 4) key.push_back(kHex[(ref.bits >> shift) & 0xF]);
  return key;
}

namespace store_internal {
namespace {

constexpr const char* kForgottenPrefix = "forgotten/";

rocksdb::ReadOptions ScanOptions() {
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  ro.readahead_size = 2 << 20;
  return ro;
}

// The viewer and entity of an encoded event, read from its head (version 1:
// u8 version, i64 ts, u32 viewer, u32 entity; events/event.cc).
bool EventRefs(std::string_view v, uint32_t* viewer, uint32_t* entity) {
  if (v.size() < 17 || v[0] != 1) return false;
  std::memcpy(viewer, v.data() + 9, 4);
  std::memcpy(entity, v.data() + 13, 4);
  return true;
}

// Deletes, into `batch`, every key of `cf` that `match` accepts; the first and
// last such key (for the compaction) widen [*lo, *hi].
template <typename Match>
absl::Status DeleteMatching(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, const std::string& from,
                            const Match& match, rocksdb::WriteBatch* batch, uint64_t* count, std::string* lo,
                            std::string* hi, const std::string& db_dir) {
  if (!cf) return absl::OkStatus();
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ScanOptions(), cf));
  for (from.empty() ? it->SeekToFirst() : it->Seek(from); it->Valid(); it->Next()) {
    const int m = match(it->key().ToStringView(), it->value().ToStringView());
    if (m < 0) break;  // past the keys that can match
    if (m == 0) continue;
    batch->Delete(cf, it->key());
    ++*count;
    if (lo->empty() || it->key().ToStringView() < *lo) *lo = it->key().ToString();
    if (it->key().ToStringView() > *hi) *hi = it->key().ToString();
  }
  return FromRocks(it->status(), "forget: scan", db_dir);
}

// Rewrites [lo, hi] of a column family to its last level, so that the deleted
// values and their tombstones leave the table files.
absl::Status CompactSpan(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, const std::string& lo,
                         const std::string& hi, const std::string& db_dir) {
  if (!cf || lo.empty()) return absl::OkStatus();
  rocksdb::CompactRangeOptions o;
  o.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  const rocksdb::Slice begin(lo), end(hi);
  return FromRocks(db->CompactRange(o, cf, &begin, &end), "forget: compact", db_dir);
}

}  // namespace

std::string AuditIndexKey(const std::string& viewer_id, const std::string& request_id) {
  std::string key = viewer_id;
  key.push_back('\0');
  key.append(request_id);
  return key;
}

absl::StatusOr<Store::ForgetSummary> ForgetEntity(rocksdb::DB* db, const ForgetFamilies& cfs,
                                                  const std::string& ext_id, int64_t now_ms, uint64_t log_length,
                                                  const std::string& db_dir) {
  std::string value;
  const rocksdb::Status got = db->Get(rocksdb::ReadOptions(), cfs.entities, ext_id, &value);
  if (got.IsNotFound()) return absl::NotFoundError("no entity or viewer with id '" + ext_id + "'");
  AFF_RETURN_IF_ERROR(FromRocks(got, "forget: read the entity", db_dir));
  EntityRecord record;
  if (!DecodeEntity(ext_id, value, &record)) return absl::DataLossError("entity registry: undecodable record");
  Store::ForgetSummary summary;
  summary.ref = record.ref;
  const uint32_t bits = record.ref.bits;
  rocksdb::WriteBatch batch;
  std::string ev_lo, ev_hi, fo_lo, fo_hi, ex_lo, ex_hi, ix_lo, ix_hi;
  bool undecodable = false;
  AFF_RETURN_IF_ERROR(DeleteMatching(db, cfs.events, "", [&](std::string_view k, std::string_view v) {
    uint32_t viewer = 0, entity = 0;
    if (!EventRefs(v, &viewer, &entity) || (viewer != bits && entity != bits)) return 0;
    Event& e = summary.removed.emplace_back();
    undecodable |= k.size() != 8 || !DecodeEvent(v, &e);
    e.offset = k.size() == 8 ? FromBigEndian64(k) : 0;
    return 1;
  }, &batch, &summary.events, &ev_lo, &ev_hi, db_dir));
  if (undecodable) return absl::DataLossError("event log: undecodable record");
  AFF_RETURN_IF_ERROR(DeleteMatching(db, cfs.follows, "", [&](std::string_view k, std::string_view) {
    if (k.size() != 8) return 0;
    const uint64_t pair = FromBigEndian64(k);
    return int(uint32_t(pair >> 32) == bits || uint32_t(pair) == bits);
  }, &batch, &summary.follows, &fo_lo, &fo_hi, db_dir));
  // Experiment counters: "k/<experiment>/v/<viewer>" (experiments/experiment_state_store.h).
  const std::string viewer_suffix = "/v/" + ext_id;
  AFF_RETURN_IF_ERROR(DeleteMatching(db, cfs.experiments, "k/", [&](std::string_view k, std::string_view) {
    if (!k.starts_with("k/")) return -1;
    if (!k.ends_with(viewer_suffix) || k.size() <= 2 + viewer_suffix.size()) return 0;
    return int(k.substr(2, k.size() - 2 - viewer_suffix.size()).find('/') == std::string_view::npos);
  }, &batch, &summary.experiment_counters, &ex_lo, &ex_hi, db_dir));
  const std::string index_prefix = AuditIndexKey(ext_id, "");
  AFF_RETURN_IF_ERROR(DeleteMatching(db, cfs.audit_index, index_prefix, [&](std::string_view k, std::string_view) {
    return k.starts_with(index_prefix) ? 1 : -1;
  }, &batch, &summary.index_entries, &ix_lo, &ix_hi, db_dir));
  // The tombstone keeps the dense slot (ids are never reused) and nothing else.
  EntityRecord tombstone;
  tombstone.ref = record.ref;
  tombstone.ext_id = ForgottenKey(record.ref);
  tombstone.deleted = true;
  batch.Delete(cfs.entities, ext_id);
  batch.Put(cfs.entities, tombstone.ext_id, EncodeEntity(tombstone));
  std::string when = BigEndian64(uint64_t(now_ms)) + BigEndian64(log_length);
  batch.Put(cfs.meta, kForgottenPrefix + BigEndian64(bits).substr(4), when);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  AFF_RETURN_IF_ERROR(FromRocks(db->Write(wo, &batch), "forget", db_dir));
  AFF_RETURN_IF_ERROR(CompactSpan(db, cfs.events, ev_lo, ev_hi, db_dir));
  AFF_RETURN_IF_ERROR(CompactSpan(db, cfs.follows, fo_lo, fo_hi, db_dir));
  AFF_RETURN_IF_ERROR(CompactSpan(db, cfs.experiments, ex_lo, ex_hi, db_dir));
  AFF_RETURN_IF_ERROR(CompactSpan(db, cfs.audit_index, ix_lo, ix_hi, db_dir));
  const std::string lo = std::min(ext_id, tombstone.ext_id), hi = std::max(ext_id, tombstone.ext_id);
  AFF_RETURN_IF_ERROR(CompactSpan(db, cfs.entities, lo, hi, db_dir));
  return summary;
}

absl::StatusOr<std::vector<Store::Forgotten>> ReadForgotten(rocksdb::DB* db, const ForgetFamilies& cfs,
                                                            const std::string& db_dir) {
  std::vector<Store::Forgotten> out;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cfs.meta));
  const std::string prefix = kForgottenPrefix;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    const std::string_view k = it->key().ToStringView(), v = it->value().ToStringView();
    if (k.size() != prefix.size() + 4 || v.size() != 16) return absl::DataLossError("forgotten list: undecodable");
    Store::Forgotten f;
    f.ref = Ref::FromBits(uint32_t(FromBigEndian64(std::string(4, '\0') + std::string(k.substr(prefix.size())))));
    f.forgotten_ms = int64_t(FromBigEndian64(v.substr(0, 8)));
    f.log_offset = FromBigEndian64(v.substr(8));
    out.push_back(f);
  }
  AFF_RETURN_IF_ERROR(FromRocks(it->status(), "read the forgotten list", db_dir));
  return out;
}

absl::StatusOr<std::vector<std::string>> ReadAuditIndex(rocksdb::DB* db, const ForgetFamilies& cfs,
                                                        const std::string& viewer_id, const std::string& db_dir) {
  std::vector<std::string> out;
  if (!cfs.audit_index) return out;
  const std::string prefix = AuditIndexKey(viewer_id, "");
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cfs.audit_index));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next())
    out.emplace_back(it->key().ToStringView().substr(prefix.size()));
  AFF_RETURN_IF_ERROR(FromRocks(it->status(), "read the audit index", db_dir));
  return out;
}

}  // namespace store_internal
}  // namespace affinity
