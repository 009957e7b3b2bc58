#include "audit/audit_log.h"

namespace affinity {

AuditLog::AuditLog(Store* store, size_t max_queue) : store_(store), max_queue_(max_queue) {
  writer_ = std::thread([this] { Run(); });
}

AuditLog::~AuditLog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  writer_.join();
}

bool AuditLog::Record(std::string request_id, std::string json) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() >= max_queue_) {
      dropped_++;
      return false;
    }
    pending_[request_id] = json;
    queue_.emplace_back(std::move(request_id), std::move(json));
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

void AuditLog::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  drained_.wait(lock, [&] { return queue_.empty() && in_flight_ == 0; });
}

void AuditLog::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty() && stop_) return;
    // Everything queued goes to the store in one write (one WAL append),
    // a bounded number of records at a time.
    constexpr size_t kMaxBatch = 256;
    std::vector<Store::AuditRecord> batch;
    const size_t n = std::min(queue_.size(), kMaxBatch);
    batch.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    in_flight_ = batch.size();
    lock.unlock();
    if ((admit_ && !admit_().ok()) || !store_->PutAudits(batch).ok()) write_errors_ += batch.size();
    lock.lock();
    for (auto& [id, json] : batch) pending_.erase(id);
    in_flight_ = 0;
    drained_.notify_all();
  }
}

}  // namespace affinity
