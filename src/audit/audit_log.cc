#include "audit/audit_log.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <future>

#include "base/status.h"

namespace affinity {

// What the writer is asked to do, in queue order.
struct AuditLog::Op {
  enum Kind { kRecord, kRedact, kCheckpoint } kind = kRecord;
  std::string id, json;
  std::shared_ptr<std::promise<absl::Status>> done;  // kRedact, kCheckpoint
  std::string viewer{};                              // kRecord: the viewer index's key ("": none)
};

AuditLog::AuditLog(Store* store, size_t max_queue, AuditChainOptions chain)
    : store_(store),
      chain_(std::move(chain)),
      clock_(chain_.clock ? chain_.clock : SystemClock::Default()),
      max_queue_(max_queue) {
  if (auto st = LoadHead(); !st.ok()) spdlog::error("audit chain: cannot read its head: {}", std::string(st.message()));
  writer_ = std::thread([this] { Run(); });
}

AuditLog::~AuditLog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  writer_.join();
  // The writer has stopped: this thread is the writer now.
  if (auto st = WriteCheckpoint(); !st.ok())
    spdlog::warn("audit chain: no checkpoint at the stop: {}", std::string(st.message()));
}

absl::Status AuditLog::LoadHead() {
  AFF_ASSIGN_OR_RETURN(auto last, store_->LastAuditChainEntry(kChainEntryPrefix));
  AFF_ASSIGN_OR_RETURN(auto checkpoint, store_->LastAuditChainEntry(kCheckpointPrefix));
  ChainCheckpoint c;
  if (checkpoint && DecodeCheckpoint(checkpoint->second, &c)) checkpoint_sequence_ = c.sequence;
  if (last && SequenceOfKey(last->first, kChainEntryPrefix[0], &head_.sequence)) {
    head_.hash = Sha256Of(last->second);
  } else if (checkpoint && c.sequence > 0) {
    head_ = {c.sequence, c.head};  // every entry pruned: the chain goes on from its last checkpoint
  }
  head_sequence_ = head_.sequence;
  return absl::OkStatus();
}

bool AuditLog::Record(std::string request_id, std::string json, std::string viewer_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() >= max_queue_) {
      dropped_++;
      return false;
    }
    pending_[request_id] = json;
    queue_.push_back(Op{Op::kRecord, std::move(request_id), std::move(json), nullptr, std::move(viewer_id)});
  }
  cv_.notify_one();
  return true;
}

absl::StatusOr<std::optional<std::string>> AuditLog::Get(const std::string& request_id) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pending_.find(request_id);
    if (it != pending_.end()) return std::optional<std::string>(it->second);
  }
  return store_->GetAudit(request_id);
}

absl::Status AuditLog::Redact(const std::string& request_id) {
  auto done = std::make_shared<std::promise<absl::Status>>();
  std::future<absl::Status> result = done->get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return absl::FailedPreconditionError("the audit log is stopped");
    queue_.push_back(Op{Op::kRedact, request_id, "", done});
  }
  cv_.notify_one();
  return result.get();
}

absl::Status AuditLog::Checkpoint() {
  auto done = std::make_shared<std::promise<absl::Status>>();
  std::future<absl::Status> result = done->get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return absl::FailedPreconditionError("the audit log is stopped");
    queue_.push_back(Op{Op::kCheckpoint, "", "", done});
  }
  cv_.notify_one();
  return result.get();
}

void AuditLog::Stop() {
  Flush();
  if (auto st = Checkpoint(); !st.ok())
    spdlog::warn("audit chain: no checkpoint at the stop: {}", std::string(st.message()));
}

void AuditLog::WriteStats(JsonWriter& w) const {
  w.Key("audit_chain").BeginObject();
  w.Key("head_sequence").Uint(head_sequence_).Key("checkpoint_sequence").Uint(checkpoint_sequence_);
  w.Key("signed").Bool(chain_.signer != nullptr);
  w.EndObject();
}

void AuditLog::ReportMetrics(MetricsSink& sink) const {
  constexpr const char* kSequence = "The audit chain's sequence: its head, and its last stored checkpoint";
  sink.Gauge("affinity_audit_chain_sequence", kSequence, {{"point", "head"}}, double(head_sequence_));
  sink.Gauge("affinity_audit_chain_sequence", kSequence, {{"point", "checkpoint"}}, double(checkpoint_sequence_));
  constexpr const char* kLost = "Audit records never written (and never in the chain) since the start, by why";
  sink.Gauge("affinity_audit_records_lost", kLost, {{"reason", "queue_full"}}, double(dropped_));
  sink.Gauge("affinity_audit_records_lost", kLost, {{"reason", "store_refused"}}, double(write_errors_));
}

void AuditLog::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  drained_.wait(lock, [&] { return queue_.empty() && in_flight_ == 0; });
}

void AuditLog::Run() {
  const auto interval = std::chrono::milliseconds(std::max<int64_t>(chain_.checkpoint_interval_ms, 1));
  auto due = std::chrono::steady_clock::now() + interval;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait_until(lock, due, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty() && stop_) return;
    if (std::chrono::steady_clock::now() >= due) {
      // The interval's checkpoint, between two writes.
      lock.unlock();
      if (auto st = WriteCheckpoint(); !st.ok())
        spdlog::warn("audit chain: checkpoint not taken: {}", std::string(st.message()));
      lock.lock();
      due = std::chrono::steady_clock::now() + interval;
      continue;
    }
    if (queue_.empty()) continue;
    if (queue_.front().kind != Op::kRecord) {
      Op op = std::move(queue_.front());
      queue_.pop_front();
      in_flight_ = 1;
      lock.unlock();
      op.done->set_value(op.kind == Op::kRedact ? WriteRedaction(op.id) : WriteCheckpoint());
      lock.lock();
      in_flight_ = 0;
      drained_.notify_all();
      continue;
    }
    // Everything queued goes to the store in one write (one WAL append),
    // a bounded number of records at a time.
    constexpr size_t kMaxBatch = 256;
    std::vector<Store::AuditRecord> batch;
    std::vector<std::string> ids;
    std::vector<std::pair<std::string, std::string>> index;  // viewer, request id
    while (!queue_.empty() && queue_.front().kind == Op::kRecord && batch.size() < kMaxBatch) {
      ids.push_back(queue_.front().id);
      if (!queue_.front().viewer.empty()) index.emplace_back(std::move(queue_.front().viewer), queue_.front().id);
      batch.emplace_back(std::move(queue_.front().id), std::move(queue_.front().json));
      queue_.pop_front();
    }
    in_flight_ = batch.size();
    lock.unlock();
    WriteRecords(batch, index);
    lock.lock();
    for (const auto& id : ids) pending_.erase(id);
    in_flight_ = 0;
    drained_.notify_all();
  }
}

ChainEntry AuditLog::NextEntry(const Head& head, ChainEntryKind kind, std::string_view bytes, std::string request_id,
                               int64_t now) const {
  ChainEntry e;
  e.sequence = head.sequence + 1;
  e.kind = kind;
  e.previous = head.hash;
  e.record = Sha256Of(bytes);
  e.request_id = std::move(request_id);
  e.written_ms = now;
  return e;
}

void AuditLog::WriteRecords(std::vector<Store::AuditRecord>& records,
                            std::vector<std::pair<std::string, std::string>>& index) {
  const size_t n = records.size();
  if (admit_ && !admit_().ok()) {
    write_errors_ += n;
    return;
  }
  Store::AuditWrite w;
  w.written_ms = clock_->NowMillis();
  Head head = head_;
  for (const auto& [id, json] : records) {
    std::string entry = EncodeChainEntry(NextEntry(head, ChainEntryKind::kRecord, json, id, w.written_ms));
    head = {head.sequence + 1, Sha256Of(entry)};
    if (head.sequence == 1) w.chain.emplace_back(kChainStartKey, std::to_string(w.written_ms));
    w.chain.emplace_back(ChainEntryKey(head.sequence), std::move(entry));
  }
  w.records = std::move(records);
  w.index = std::move(index);  // in the same write: a stored record is always findable by its viewer
  if (!store_->WriteAudit(w).ok()) {
    write_errors_ += n;
    return;
  }
  head_ = head;  // only a stored write moves the head
  head_sequence_ = head.sequence;
}

absl::Status AuditLog::WriteRedaction(const std::string& request_id) {
  AFF_ASSIGN_OR_RETURN(std::optional<Store::StoredAudit> stored, store_->GetStoredAudit(request_id));
  if (!stored) return absl::NotFoundError("no audit record for request_id '" + request_id + "'");
  if (admit_) AFF_RETURN_IF_ERROR(admit_());
  Store::AuditWrite w;
  w.written_ms = clock_->NowMillis();
  std::string entry = EncodeChainEntry(NextEntry(head_, ChainEntryKind::kRedaction, stored->second, request_id,
                                                 w.written_ms));
  const Head head{head_.sequence + 1, Sha256Of(entry)};
  w.chain.emplace_back(ChainEntryKey(head.sequence), std::move(entry));
  w.deleted.push_back(request_id);
  w.sync = true;
  AFF_RETURN_IF_ERROR(store_->WriteAudit(w));
  head_ = head;
  head_sequence_ = head.sequence;
  return absl::OkStatus();
}

absl::Status AuditLog::WriteCheckpoint() {
  if (head_.sequence == 0 || head_.sequence == checkpoint_sequence_) return absl::OkStatus();
  if (admit_) AFF_RETURN_IF_ERROR(admit_());
  ChainCheckpoint c;
  c.sequence = head_.sequence;
  c.head = head_.hash;
  c.written_ms = clock_->NowMillis();
  if (chain_.signer) {
    c.signature = chain_.signer->Sign(CheckpointMessage(c.sequence, c.head));
    if (!c.signature.empty()) c.key_id = chain_.signer->key_id();
  }
  // A synced write: every entry before it is durable before the checkpoint is logged.
  Store::AuditWrite w;
  w.chain.emplace_back(CheckpointKey(c.sequence), EncodeCheckpoint(c));
  w.sync = true;
  AFF_RETURN_IF_ERROR(store_->WriteAudit(w));
  checkpoint_sequence_ = c.sequence;
  spdlog::info("audit checkpoint: sequence {} head {} key {} signature {}", c.sequence, HexOf(c.head),
               c.key_id.empty() ? "none" : c.key_id, c.signature.empty() ? "none" : HexOf(c.signature));
  return PruneChain(c.written_ms);
}

absl::Status AuditLog::PruneChain(int64_t now) {
  const int64_t retention = store_->AuditRetentionMs();
  if (retention <= 0) return absl::OkStatus();
  const int64_t cutoff = now - retention;
  // The newest checkpoint whose entry has expired: the chain's records up to
  // it have all expired. The first checkpoint may anchor a prefix pruned before.
  std::optional<ChainCheckpoint> anchor;
  absl::Status read = absl::OkStatus();
  bool first = true;
  AFF_RETURN_IF_ERROR(store_->ScanAuditChain(kCheckpointPrefix, [&](std::string_view key, std::string_view value) {
    ChainCheckpoint c;
    uint64_t seq = 0;
    if (!SequenceOfKey(key, kCheckpointPrefix[0], &seq) || !DecodeCheckpoint(value, &c)) return false;
    std::optional<int64_t> written;
    const std::string entry_key = ChainEntryKey(seq);
    read = store_->ScanAuditChain(entry_key, [&](std::string_view k, std::string_view v) {
      ChainEntry e;
      if (k == entry_key && DecodeChainEntry(v, &e)) written = e.written_ms;
      return false;
    });
    const bool expired = written ? *written < cutoff : first;
    first = false;
    if (!read.ok() || !expired) return false;
    anchor = c;
    return true;
  }));
  AFF_RETURN_IF_ERROR(read);
  if (!anchor) return absl::OkStatus();
  Store::AuditWrite w;
  w.erased.emplace_back(ChainEntryKey(0), ChainEntryKey(anchor->sequence + 1));
  w.erased.emplace_back(CheckpointKey(0), CheckpointKey(anchor->sequence));
  return store_->WriteAudit(w);
}

}  // namespace affinity
