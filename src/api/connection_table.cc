#include "api/connection_table.h"

#include <utility>

namespace affinity {

std::optional<uint64_t> ConnectionTable::Admit(const std::shared_ptr<Connection>& c) {
  std::shared_ptr<Connection> evict;
  uint64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (entries_.size() >= cap_) {
      auto it = Idlest();
      if (it == entries_.end()) {
        refused_.fetch_add(1, std::memory_order_relaxed);
        return std::nullopt;
      }
      evict = it->second.conn.lock();
      entries_.erase(it);  // its slot is the new connection's from now on
      ++evicted_;
    }
    id = next_id_++;
    entries_.emplace(id, Entry{c, true, false, Clock::now()});
    ++accepted_;
  }
  if (evict) evict->Evict();  // outside the lock: it posts to the connection's executor
  return id;
}

void ConnectionTable::Remove(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.erase(id);
}

void ConnectionTable::SetWaiting(uint64_t id, bool waiting, bool served) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  it->second.waiting = waiting;
  it->second.served = served;
  it->second.since = Clock::now();
}

std::unordered_map<uint64_t, ConnectionTable::Entry>::iterator ConnectionTable::Idlest() {
  // Never-used connections first (a flood of idle sockets, a client that
  // opened one and went away), then the keep-alive that has waited longest.
  auto best = entries_.end();
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (!it->second.waiting) continue;
    if (best == entries_.end()) {
      best = it;
      continue;
    }
    const Entry &a = it->second, &b = best->second;
    if ((a.served < b.served) || (a.served == b.served && a.since < b.since)) best = it;
  }
  return best;
}

ConnectionStats ConnectionTable::Stats() const {
  ConnectionStats s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    s.open = entries_.size();
    for (const auto& [id, e] : entries_) s.busy += e.waiting ? 0 : 1;
    s.accepted = accepted_;
    s.evicted = evicted_;
  }
  s.cap = cap_;
  s.refused = refused_.load(std::memory_order_relaxed);
  s.header_timeouts = header_timeouts_.load(std::memory_order_relaxed);
  s.idle_timeouts = idle_timeouts_.load(std::memory_order_relaxed);
  s.accept_errors = accept_errors_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace affinity
