#include "api/connection_table.h"

#include <utility>

namespace affinity {

std::optional<uint64_t> ConnectionTable::Admit(const std::shared_ptr<Connection>& c, std::string_view peer,
                                               Refusal* why) {
  if (why) *why = Refusal::kNone;
  const bool counted = cap_per_peer_ > 0 && !peer.empty();
  std::shared_ptr<Connection> evict;
  uint64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // The peer's own cap first: its idle connection makes room, or it is refused.
    const auto held = counted ? per_peer_.find(std::string(peer)) : per_peer_.end();
    const bool at_peer_cap = held != per_peer_.end() && held->second >= cap_per_peer_;
    if (at_peer_cap || entries_.size() >= cap_) {
      auto it = Idlest(at_peer_cap ? peer : std::string_view());
      if (it == entries_.end()) {
        (at_peer_cap ? refused_per_peer_ : refused_).fetch_add(1, std::memory_order_relaxed);
        if (why) *why = at_peer_cap ? Refusal::kPerPeer : Refusal::kTotal;
        return std::nullopt;
      }
      evict = it->second.conn.lock();
      Erase(it);  // its slot is the new connection's from now on
      ++evicted_;
    }
    id = next_id_++;
    entries_.emplace(id, Entry{c, true, false, Clock::now(), counted ? std::string(peer) : std::string()});
    if (counted) ++per_peer_[std::string(peer)];
    ++accepted_;
  }
  if (evict) evict->Evict();  // outside the lock: it posts to the connection's executor
  return id;
}

void ConnectionTable::Remove(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = entries_.find(id); it != entries_.end()) Erase(it);
}

void ConnectionTable::Erase(Entries::iterator it) {
  if (!it->second.peer.empty()) {
    auto held = per_peer_.find(it->second.peer);
    if (held != per_peer_.end() && --held->second == 0) per_peer_.erase(held);
  }
  entries_.erase(it);
}

void ConnectionTable::SetWaiting(uint64_t id, bool waiting, bool served) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  it->second.waiting = waiting;
  it->second.served = served;
  it->second.since = Clock::now();
}

ConnectionTable::Entries::iterator ConnectionTable::Idlest(std::string_view peer) {
  // Never-used connections first (a flood of idle sockets, a client that
  // opened one and went away), then the keep-alive that has waited longest.
  auto best = entries_.end();
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (!it->second.waiting || (!peer.empty() && it->second.peer != peer)) continue;
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
  s.cap_per_peer = cap_per_peer_;
  s.refused = refused_.load(std::memory_order_relaxed);
  s.refused_per_peer = refused_per_peer_.load(std::memory_order_relaxed);
  s.header_timeouts = header_timeouts_.load(std::memory_order_relaxed);
  s.idle_timeouts = idle_timeouts_.load(std::memory_order_relaxed);
  s.accept_errors = accept_errors_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace affinity
