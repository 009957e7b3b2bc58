#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/write_batch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <atomic>
#include <filesystem>
#include <mutex>
#include <thread>

#include "base/status.h"
#include "store/action_codes.h"
#include "store/record_codecs.h"
#include "store/add_counters_operator.h"
#include "store/retention.h"
#include "store/rocks_audit.h"
#include "store/rocks_forget.h"
#include "store/rocks_open.h"
#include "store/fault_injection.h"
#include "base/descriptors.h"
#include "store/rocks_errors.h"
#include "store/store.h"

namespace affinity {
namespace {

using namespace store_internal;

constexpr const char* kCfNames[] = {"default",     "events",      "entities",    "follows",      "audit",
                                    "experiments", "idempotency", "audit_chain", "audit_viewers"};
enum Cf { kDefault = 0, kEvents, kEntities, kFollows, kAudit, kExperiments, kIdempotency, kAuditChain, kAuditViewers,
          kNumCf };

class RocksStore final : public Store {
 public:
  RocksStore(std::unique_ptr<rocksdb::DB> db, std::vector<rocksdb::ColumnFamilyHandle*> cfs,
             OpenMode mode, std::unique_ptr<Retention> retention, std::unique_ptr<Retention> event_retention,
             std::unique_ptr<Retention> key_retention, std::string db_dir, std::shared_ptr<BackgroundErrors> errors,
             std::string read_only_reason, std::unique_ptr<rocksdb::Env> env)
      : env_(std::move(env)),
        retention_(std::move(retention)),
        event_retention_(std::move(event_retention)),
        key_retention_(std::move(key_retention)),
        db_(std::move(db)),
        cfs_(std::move(cfs)),
        mode_(mode),
        db_dir_(std::move(db_dir)),
        errors_(std::move(errors)),
        read_only_reason_(std::move(read_only_reason)) {}

  ~RocksStore() override {
    // A clean close flushes the memtables: the next open has no log to replay.
    if (mode_ == OpenMode::kPrimary && read_only_reason_.empty() && BackgroundError().empty())
      db_->Flush(rocksdb::FlushOptions(), cfs_).PermitUncheckedError();
    for (auto* cf : cfs_)
      if (cf) db_->DestroyColumnFamilyHandle(cf);
    cfs_.clear();
    db_.reset();  // before the compaction filter it holds
    std::error_code ec;  // a secondary's own directory (its info log) goes with it
    if (!secondary_dir_.empty()) std::filesystem::remove_all(secondary_dir_, ec);
  }
  void SetSecondaryDir(std::string dir) { secondary_dir_ = std::move(dir); }

  absl::Status Init() {
    AFF_RETURN_IF_ERROR(LoadNextOffset());
    return KeepAMemtableEntry();
  }

  std::string BackgroundError() const override { return errors_ ? errors_->Current() : ""; }
  absl::Status Resume() override {
    if (mode_ != OpenMode::kPrimary || !read_only_reason_.empty()) return absl::OkStatus();
    // Busy: RocksDB's own recovery is under way; wait for it a little.
    rocksdb::Status s = db_->Resume();
    for (int i = 0; i < 40 && s.IsBusy(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      s = db_->Resume();
    }
    if (s.IsBusy()) return StorageError("resume writes: the store is still recovering from: " + BackgroundError());
    AFF_RETURN_IF_ERROR(FromRocks(s, "resume writes", db_dir_));
    if (errors_) errors_->Clear();
    AFF_RETURN_IF_ERROR(KeepAMemtableEntry());
    return absl::OkStatus();
  }
  // An unlogged memtable entry, so that a later resume opens a new log (rocks_errors.h).
  absl::Status KeepAMemtableEntry() {
    if (mode_ != OpenMode::kPrimary || !read_only_reason_.empty()) return absl::OkStatus();
    return FromRocks(store_internal::KeepAMemtableEntry(db_.get()), "keep a memtable entry", db_dir_);
  }
  std::string ReadOnlyReason() const override { return read_only_reason_; }

  absl::Status AppendEvents(std::vector<Event>& events, const std::vector<FollowChange>& follows,
                            const IdempotencyRecord* key) override {
    AFF_RETURN_IF_ERROR(Writable());
    rocksdb::WriteBatch batch;
    AFF_RETURN_IF_ERROR(PutKey(key, &batch));
    {
      // Offsets are assigned in the order batches are written so that the log's key
      // order is its append order.
      std::lock_guard<std::mutex> lock(append_mu_);
      uint64_t off = next_offset_;
      for (auto& e : events) {
        e.offset = off++;
        batch.Put(cfs_[kEvents], BigEndian64(e.offset), EncodeEvent(e));
      }
      // The log's length survives its oldest events being dropped (retention):
      // offsets are never reused.
      batch.Put(cfs_[kDefault], kNextOffsetKey, BigEndian64(off));
      for (const auto& f : follows) {
        if (f.add) {
          batch.Put(cfs_[kFollows], FollowKey(f.follower, f.target),
                    rocksdb::Slice(reinterpret_cast<const char*>(&f.ts), 8));
        } else {
          batch.Delete(cfs_[kFollows], FollowKey(f.follower, f.target));
        }
      }
      rocksdb::WriteOptions wo;
      wo.sync = true;
      auto s = db_->Write(wo, &batch);
      if (!s.ok()) {
        for (auto& e : events) e.offset = 0;
        return FromRocks(s, "append events", db_dir_);
      }
      next_offset_ = off;
    }
    return absl::OkStatus();
  }

  absl::Status PutEntities(const std::vector<EntityRecord>& entities, const IdempotencyRecord* key) override {
    AFF_RETURN_IF_ERROR(Writable());
    rocksdb::WriteBatch batch;
    AFF_RETURN_IF_ERROR(PutKey(key, &batch));
    for (const auto& e : entities) batch.Put(cfs_[kEntities], e.ext_id, EncodeEntity(e));
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return FromRocks(db_->Write(wo, &batch), "put entities", db_dir_);
  }

  absl::Status ScanEventsFrom(uint64_t from, const std::function<bool(const Event&)>& fn) const override {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ScanOptions(), cfs_[kEvents]));
    Event e;
    const int64_t cutoff = event_retention_->Cutoff();
    for (it->Seek(BigEndian64(from)); it->Valid(); it->Next()) {
      if (it->key().size() != 8 || !DecodeEvent(it->value().ToStringView(), &e))
        return absl::DataLossError("event log: undecodable record");
      if (e.ts < cutoff) continue;  // past the retention, not yet compacted away
      e.offset = FromBigEndian64(it->key().ToStringView());
      if (!fn(e)) break;
    }
    return FromRocks(it->status(), "scan events", db_dir_);
  }

  absl::Status ScanEntities(const std::function<void(const EntityRecord&)>& fn) const override {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ScanOptions(), cfs_[kEntities]));
    EntityRecord e;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (!DecodeEntity(it->key().ToStringView(), it->value().ToStringView(), &e))
        return absl::DataLossError("entity registry: undecodable record");
      fn(e);
    }
    return FromRocks(it->status(), "scan entities", db_dir_);
  }

  absl::StatusOr<std::vector<Event>> ReadEvents(const std::vector<uint64_t>& offsets) const override {
    std::vector<Event> out;
    const int64_t cutoff = event_retention_->Cutoff();
    std::string value;
    Event e;
    for (uint64_t offset : offsets) {
      auto s = db_->Get(rocksdb::ReadOptions(), cfs_[kEvents], BigEndian64(offset), &value);
      if (s.IsNotFound()) continue;  // dropped by the retention
      AFF_RETURN_IF_ERROR(FromRocks(s, "read event", db_dir_));
      if (!DecodeEvent(value, &e)) return absl::DataLossError("event log: undecodable record");
      if (e.ts < cutoff) continue;
      e.offset = offset;
      out.push_back(e);
    }
    return out;
  }

  absl::Status ScanFollows(const std::function<void(Ref, Ref, int64_t)>& fn) const override {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ScanOptions(), cfs_[kFollows]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (it->key().size() != 8 || it->value().size() != 8)
        return absl::DataLossError("follow graph: undecodable record");
      uint64_t k = FromBigEndian64(it->key().ToStringView());
      int64_t ts;
      std::memcpy(&ts, it->value().data(), 8);
      fn(Ref::FromBits(uint32_t(k >> 32)), Ref::FromBits(uint32_t(k)), ts);
    }
    return FromRocks(it->status(), "scan follows", db_dir_);
  }

  // The audit records and the audit chain: store/rocks_audit.h.
  RocksAudit Audit() const {
    return RocksAudit(db_.get(), cfs_[kAudit], cfs_[kAuditChain], cfs_[kAuditViewers], db_dir_);
  }
  absl::Status WriteAudit(const AuditWrite& w) override {
    AFF_RETURN_IF_ERROR(Writable());
    return Audit().Write(w, retention_->clock()->NowMillis());
  }
  absl::StatusOr<std::optional<std::string>> GetAudit(const std::string& request_id) const override {
    AFF_ASSIGN_OR_RETURN(std::optional<StoredAudit> stored, GetStoredAudit(request_id));
    // Compaction removes expired records lazily; until then they read as absent.
    if (!stored || retention_->Expired(stored->first)) return std::optional<std::string>();
    return std::optional<std::string>(std::move(stored->second));
  }
  absl::StatusOr<std::optional<StoredAudit>> GetStoredAudit(const std::string& id) const override { return Audit().Get(id); }
  absl::Status ScanStoredAudits(const std::function<void(std::string_view, int64_t, std::string_view)>& fn)
      const override { return Audit().Scan(fn); }
  absl::Status ScanAuditChain(const std::string& from, const std::function<bool(std::string_view, std::string_view)>& fn)
      const override { return Audit().ScanChain(from, fn); }
  absl::StatusOr<std::optional<std::pair<std::string, std::string>>> LastAuditChainEntry(
      const std::string& prefix) const override { return Audit().LastInChain(prefix); }
  int64_t AuditRetentionMs() const override { return retention_->retention_ms(); }
  absl::StatusOr<std::vector<std::string>> AuditRecordsOf(const std::string& viewer) const override {
    return ReadAuditIndex(db_.get(), Families(), viewer, db_dir_);
  }

  // Forgetting a person: store/rocks_forget.h.
  ForgetFamilies Families() const {
    return {cfs_[kDefault], cfs_[kEvents], cfs_[kEntities], cfs_[kFollows], cfs_[kExperiments], cfs_[kAuditViewers]};
  }
  absl::StatusOr<ForgetSummary> Forget(const std::string& ext_id, int64_t now_ms) override {
    AFF_RETURN_IF_ERROR(Writable());
    return ForgetEntity(db_.get(), Families(), ext_id, now_ms, NextOffset(), db_dir_);
  }
  absl::StatusOr<std::vector<Forgotten>> ForgottenEntities() const override {
    return ReadForgotten(db_.get(), Families(), db_dir_);
  }

  absl::StatusOr<std::optional<IdempotencyRecord>> GetIdempotencyRecord(const std::string& key) const override {
    if (!cfs_[kIdempotency]) return std::optional<IdempotencyRecord>();  // a secondary over an older dir
    std::string v;
    auto s = db_->Get(rocksdb::ReadOptions(), cfs_[kIdempotency], key, &v);
    if (s.IsNotFound()) return std::optional<IdempotencyRecord>();
    AFF_RETURN_IF_ERROR(FromRocks(s, "idempotency key", db_dir_));
    IdempotencyRecord r;
    if (!DecodeIdempotency(key, v, &r)) return absl::DataLossError("idempotency record: undecodable");
    // Past the window it is gone at once, though compaction removes it later.
    if (key_retention_->Expired(r.written_ms)) return std::optional<IdempotencyRecord>();
    return std::optional<IdempotencyRecord>(std::move(r));
  }

  absl::Status PruneIdempotencyRecords() override { return CompactAll(kIdempotency, "prune idempotency keys"); }
  absl::Status PruneAudits() override { return CompactAll(kAudit, "prune audit"); }
  absl::Status PruneEvents() override { return CompactAll(kEvents, "prune events"); }

  int64_t EventRetentionMs() const override { return event_retention_->retention_ms(); }

  absl::Status PutMeta(const std::string& key, const std::string& value) override {
    return SyncedPut(kDefault, kMetaPrefix + key, value, "put meta");
  }
  absl::Status PutExperimentRecord(const std::string& key, const std::string& value) override {
    return SyncedPut(kExperiments, key, value, "put experiment");
  }

  absl::Status AddCounters(const std::vector<CounterDelta>& deltas) override {
    AFF_RETURN_IF_ERROR(Writable());
    if (deltas.empty()) return absl::OkStatus();
    rocksdb::WriteBatch batch;
    for (const auto& [key, values] : deltas) batch.Merge(cfs_[kExperiments], key, EncodeCounters(values));
    return FromRocks(db_->Write(rocksdb::WriteOptions(), &batch), "add counters", db_dir_);
  }

  absl::Status PutCounters(const std::vector<CounterDelta>& values) override {
    AFF_RETURN_IF_ERROR(Writable());
    if (values.empty()) return absl::OkStatus();
    rocksdb::WriteBatch batch;
    for (const auto& [key, v] : values) batch.Put(cfs_[kExperiments], key, EncodeCounters(v));
    return FromRocks(db_->Write(rocksdb::WriteOptions(), &batch), "put counters", db_dir_);
  }

  absl::Status ScanExperimentRecords(
      const std::string& prefix, const std::function<void(std::string_view, std::string_view)>& fn) const override {
    if (!cfs_[kExperiments]) return absl::OkStatus();  // a secondary over a dir from before experiments
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[kExperiments]));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next())
      fn(it->key().ToStringView(), it->value().ToStringView());
    return FromRocks(it->status(), "scan experiments", db_dir_);
  }

  absl::StatusOr<std::optional<std::string>> GetMeta(const std::string& key) const override {
    std::string v;
    auto s = db_->Get(rocksdb::ReadOptions(), cfs_[kDefault], kMetaPrefix + key, &v);
    if (s.IsNotFound()) return std::optional<std::string>();
    AFF_RETURN_IF_ERROR(FromRocks(s, "meta", db_dir_));
    return std::optional<std::string>(std::move(v));
  }

  Usage GetUsage() const override {
    Usage u;
    auto sum = [&](const char* property) {
      uint64_t v = 0;
      return db_->GetAggregatedIntProperty(property, &v) ? v : 0;
    };
    u.disk_bytes = sum("rocksdb.live-sst-files-size");
    u.pending_compaction_bytes = sum("rocksdb.estimate-pending-compaction-bytes");
    u.memtable_bytes = sum("rocksdb.cur-size-all-mem-tables");
    db_->GetIntProperty(cfs_[kAudit], "rocksdb.live-sst-files-size", &u.audit_disk_bytes);
    db_->GetIntProperty("rocksdb.num-running-compactions", &u.running_compactions);
    return u;
  }

  uint64_t NextOffset() const override {
    std::lock_guard<std::mutex> lock(append_mu_);
    return next_offset_;
  }

  absl::Status CatchUp() override {
    if (mode_ != OpenMode::kSecondary) return absl::OkStatus();
    AFF_RETURN_IF_ERROR(FromRocks(db_->TryCatchUpWithPrimary(), "catch up", db_dir_));
    AFF_RETURN_IF_ERROR(LoadNextOffset());
    return LoadActionCodes(*this);  // names the primary gave codes since
  }

 private:
  static rocksdb::ReadOptions ScanOptions() {
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;
    ro.readahead_size = 2 << 20;
    return ro;
  }

  // Rewrites every table file of a column family, so its compaction filter
  // (retention) sees every value now.
  absl::Status CompactAll(Cf cf, const char* what) {
    AFF_RETURN_IF_ERROR(Writable());
    rocksdb::CompactRangeOptions o;
    o.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    return FromRocks(db_->CompactRange(o, cfs_[cf], nullptr, nullptr), what, db_dir_);
  }

  // Adds a write's idempotency record, stamped now, to its batch.
  absl::Status PutKey(const IdempotencyRecord* key, rocksdb::WriteBatch* batch) const {
    if (!key) return absl::OkStatus();
    IdempotencyRecord stamped = *key;
    stamped.written_ms = key_retention_->clock()->NowMillis();
    return FromRocks(batch->Put(cfs_[kIdempotency], key->key, EncodeIdempotency(stamped)), "idempotency key", db_dir_);
  }

  absl::Status SyncedPut(Cf cf, const std::string& key, const std::string& value, const char* what) {
    AFF_RETURN_IF_ERROR(Writable());
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return FromRocks(db_->Put(wo, cfs_[cf], key, value), what, db_dir_);
  }
  // Writes go to a primary that opened writable.
  absl::Status Writable() const {
    if (mode_ != OpenMode::kPrimary) return absl::FailedPreconditionError("store is read-only");
    if (!read_only_reason_.empty()) return StorageError(read_only_reason_);
    return absl::OkStatus();
  }

  absl::Status LoadNextOffset() {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[kEvents]));
    it->SeekToLast();
    uint64_t next = it->Valid() ? FromBigEndian64(it->key().ToStringView()) + 1 : 0;
    AFF_RETURN_IF_ERROR(FromRocks(it->status(), "read log tail", db_dir_));
    std::string recorded;
    auto st = db_->Get(rocksdb::ReadOptions(), cfs_[kDefault], kNextOffsetKey, &recorded);
    if (!st.IsNotFound()) {
      AFF_RETURN_IF_ERROR(FromRocks(st, "read log length", db_dir_));
      if (recorded.size() == 8) next = std::max<uint64_t>(next, FromBigEndian64(recorded));
    }
    std::lock_guard<std::mutex> lock(append_mu_);
    next_offset_ = next;
    return absl::OkStatus();
  }

  static constexpr const char* kMetaPrefix = "meta/";
  static constexpr const char* kNextOffsetKey = "log/next_offset";
  std::unique_ptr<rocksdb::Env> env_;           // the file system under db_ when faults are injected; outlives db_
  std::unique_ptr<Retention> retention_;        // audit; outlives db_ (declared first)
  std::unique_ptr<Retention> event_retention_;  // events; outlives db_
  std::unique_ptr<Retention> key_retention_;    // idempotency records; outlives db_
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> cfs_;
  OpenMode mode_;
  std::string db_dir_;
  std::shared_ptr<BackgroundErrors> errors_;
  std::string read_only_reason_;  // "" unless it opened read-only on a full volume
  std::string secondary_dir_;     // a secondary's directory under DATA/tmp, removed at close
  mutable std::mutex append_mu_;
  uint64_t next_offset_ = 0;  // guarded by append_mu_
};

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> OpenRocksStore(const std::string& dir, OpenMode mode,
                                                      const StoreOptions& store_options) {
  std::error_code ec;
  std::string db_dir = dir + "/db";
  if (mode == OpenMode::kPrimary) {
    std::filesystem::create_directories(db_dir, ec);
    if (ec) return absl::InternalError("cannot create " + db_dir + ": " + ec.message());
  } else if (!std::filesystem::exists(db_dir + "/CURRENT")) {
    return absl::NotFoundError("no affinity store in " + dir + " (import data first)");
  }
  rocksdb::Options options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  options.IncreaseParallelism(2);
  options.compression = rocksdb::kLZ4Compression;
  options.write_buffer_size = 64 << 20;
  // Table files held open: a quarter of the process's descriptors, at most
  // 512 (the server's connections take half; a 1,024 limit leaves 256 here).
  const uint64_t fd_share = std::clamp<uint64_t>(CurrentDescriptorLimit().soft / 4, 64, 512);
  options.max_open_files = mode == OpenMode::kSecondary ? -1 : int(fd_share);
  // The write-ahead log is bounded: past this size RocksDB flushes the column
  // families that pin its oldest file (the events memtable, the audit
  // records), so a restart replays seconds of log, not gigabytes.
  options.max_total_wal_size = store_options.max_wal_bytes;
  std::unique_ptr<rocksdb::Env> env;
  if (store_options.faults) {
    env = rocksdb::NewCompositeEnv(std::static_pointer_cast<rocksdb::FileSystem>(store_options.faults->NewFileSystem()));
    options.env = env.get();
  }
  auto errors = std::make_shared<BackgroundErrors>();
  options.listeners.push_back(errors);
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  const Clock* clock = store_options.clock ? store_options.clock : SystemClock::Default();
  auto retention = std::make_unique<Retention>(store_options.audit_retention_ms, clock, &AuditTime,
                                               "affinity.AuditRetention");
  auto event_retention = std::make_unique<Retention>(store_options.event_retention_ms, clock, &EventTime,
                                                     "affinity.EventRetention");
  auto key_retention = std::make_unique<Retention>(std::max<int64_t>(store_options.idempotency_window_ms, 1), clock,
                                                   &IdempotencyTime, "affinity.IdempotencyWindow");
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (const char* name : kCfNames) descs.emplace_back(name, rocksdb::ColumnFamilyOptions(options));
  descs[kExperiments].options.merge_operator = std::make_shared<AddCountersOperator>();
  if (store_options.audit_retention_ms > 0) {
    rocksdb::ColumnFamilyOptions& audit = descs[kAudit].options;
    audit.compaction_filter = retention.get();
    // Files holding records older than the retention are compacted (and the
    // filter drops the expired ones) even when no new writes reach them.
    audit.ttl = uint64_t(std::max<int64_t>(store_options.audit_retention_ms / 1000, 1));
    descs[kAuditViewers].options.compaction_filter = retention.get();  // the index expires with its records
    descs[kAuditViewers].options.ttl = audit.ttl;
  }
  // Keys past the idempotency window leave the disk as compaction reaches them;
  // the ttl makes files of old keys compact even when no new keys arrive.
  descs[kIdempotency].options.compaction_filter = key_retention.get();
  descs[kIdempotency].options.ttl = uint64_t(std::max<int64_t>(key_retention->retention_ms() / 1000, 1));
  if (store_options.event_retention_ms > 0) {
    rocksdb::ColumnFamilyOptions& events = descs[kEvents].options;
    events.compaction_filter = event_retention.get();
    events.ttl = uint64_t(std::max<int64_t>(store_options.event_retention_ms / 1000, 1));
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s;
  std::string read_only, secondary;
  if (mode == OpenMode::kPrimary) {
    s = rocksdb::DB::Open(rocksdb::DBOptions(options), db_dir, descs, &handles, &raw);
    // A full (or failing) volume: what is stored can still be served.
    if (!s.ok() && IsStorageError(FromRocks(s, "open"))) {
      handles.clear();
      const rocksdb::Status ro = OpenPresent(options, db_dir, descs, &handles, &raw, [&](const auto& present, auto* opened, auto** db) {
        return rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(options), db_dir, present, opened, db);
      });
      if (ro.ok()) {
        read_only = "the store opened read-only: writing to " + db_dir + " failed at start (" + s.ToString() +
                    "); free space on the volume and restart to write again";
        s = ro;
      }
    }
  } else {  // one directory per open (a process may hold several secondaries), removed at close
    static std::atomic<uint64_t> opened_secondaries{0};
    secondary = dir + "/tmp/secondary-" + std::to_string(::getpid()) + "-" + std::to_string(++opened_secondaries);
    std::filesystem::create_directories(secondary, ec);
    s = OpenPresent(options, db_dir, descs, &handles, &raw, [&](const auto& present, auto* opened, auto** db) {
      return rocksdb::DB::OpenAsSecondary(rocksdb::DBOptions(options), db_dir, secondary, present, opened, db);
    });
  }
  AFF_RETURN_IF_ERROR(FromRocks(s, "open " + db_dir));  // a failed secondary's directory is left for inspection
  auto store = std::make_unique<RocksStore>(std::unique_ptr<rocksdb::DB>(raw), handles, mode, std::move(retention),
                                            std::move(event_retention), std::move(key_retention), db_dir,
                                            std::move(errors), read_only, std::move(env));
  store->SetSecondaryDir(secondary);
  AFF_RETURN_IF_ERROR(store->Init());
  // The configured actions' names, so that their events are shown by name.
  AFF_RETURN_IF_ERROR(LoadActionCodes(*store));
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace affinity
