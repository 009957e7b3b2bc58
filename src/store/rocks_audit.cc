#include "store/rocks_audit.h"

#include <rocksdb/write_batch.h>

#include <memory>

#include "base/status.h"
#include "store/record_codecs.h"
#include "store/rocks_forget.h"
#include "store/rocks_errors.h"

namespace affinity::store_internal {
namespace {

rocksdb::ReadOptions ScanOptions() {
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  ro.readahead_size = 2 << 20;
  return ro;
}

}  // namespace

absl::Status RocksAudit::Write(const Store::AuditWrite& w, int64_t now) const {
  const bool chained = !w.chain.empty() || !w.erased.empty();
  if (chained && !chain_) return absl::FailedPreconditionError("the store has no audit chain");
  rocksdb::WriteBatch batch;
  const int64_t stamp = w.written_ms ? w.written_ms : now;
  for (const auto& [id, json] : w.records) batch.Put(audit_, id, EncodeAudit(stamp, json));
  for (const auto& id : w.deleted) batch.Delete(audit_, id);
  if (index_)
    for (const auto& [viewer, id] : w.index) batch.Put(index_, AuditIndexKey(viewer, id), EncodeAudit(stamp, ""));
  for (const auto& [from, to] : w.erased) batch.DeleteRange(chain_, from, to);
  for (const auto& [key, value] : w.chain) batch.Put(chain_, key, value);
  rocksdb::WriteOptions wo;
  wo.sync = w.sync;
  return FromRocks(db_->Write(wo, &batch), "audit", db_dir_);
}

absl::StatusOr<std::optional<Store::StoredAudit>> RocksAudit::Get(const std::string& request_id) const {
  std::string v;
  auto s = db_->Get(rocksdb::ReadOptions(), audit_, request_id, &v);
  if (s.IsNotFound()) return std::optional<Store::StoredAudit>();
  AFF_RETURN_IF_ERROR(FromRocks(s, "audit", db_dir_));
  auto [written, json] = DecodeAudit(v);
  return std::optional<Store::StoredAudit>(Store::StoredAudit(written, std::string(json)));
}

absl::Status RocksAudit::Scan(const std::function<void(std::string_view, int64_t, std::string_view)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ScanOptions(), audit_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto [written, json] = DecodeAudit(it->value().ToStringView());
    fn(it->key().ToStringView(), written, json);
  }
  return FromRocks(it->status(), "scan audit", db_dir_);
}

absl::Status RocksAudit::ScanChain(const std::string& from,
                                   const std::function<bool(std::string_view, std::string_view)>& fn) const {
  if (!chain_) return absl::OkStatus();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ScanOptions(), chain_));
  for (it->Seek(from); it->Valid(); it->Next())
    if (!fn(it->key().ToStringView(), it->value().ToStringView())) break;
  return FromRocks(it->status(), "scan audit chain", db_dir_);
}

absl::StatusOr<std::optional<std::pair<std::string, std::string>>> RocksAudit::LastInChain(
    const std::string& prefix) const {
  using Found = std::optional<std::pair<std::string, std::string>>;
  if (!chain_ || prefix.empty() || uint8_t(prefix.back()) == 0xFF) return Found();
  std::string past = prefix;
  past.back() = char(uint8_t(past.back()) + 1);  // the first key after every key with the prefix
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), chain_));
  it->SeekForPrev(past);
  if (it->Valid() && it->key().ToStringView() == past) it->Prev();
  Found found;
  if (it->Valid() && it->key().starts_with(prefix)) found.emplace(it->key().ToString(), it->value().ToString());
  AFF_RETURN_IF_ERROR(FromRocks(it->status(), "read the audit chain's head", db_dir_));
  return found;
}

}  // namespace affinity::store_internal
