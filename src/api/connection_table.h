// The HTTP server's open connections as a budget. Every connection is a file
// descriptor, and a process out of descriptors can neither accept a client nor
// open a file, so the server holds at most `cap` connections. At the cap a new
// connection takes the place of the longest-waiting idle one (one that never
// sent a request first, then the keep-alive idle longest); when every open
// connection is in the middle of a request the new one is refused. A peer (a
// remote address) may also have a cap of its own, kept the same way among
// that peer's connections: so one client cannot take the whole budget.
//
// Thread safety: all methods may be called from any thread (one mutex, held
// only for table updates; eviction itself runs on the evicted connection's own
// executor).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace affinity {

// What the table needs of a connection: a way to close it from outside.
class Connection {
 public:
  virtual ~Connection() = default;
  // Closes the connection soon, on its own executor. Called at most once.
  virtual void Evict() = 0;
};

struct ConnectionStats {
  uint64_t open = 0;             // connections held now
  uint64_t busy = 0;             // ... of which in the middle of a request
  uint64_t cap = 0;              // the most held at once
  uint64_t accepted = 0;         // connections admitted since start
  uint64_t refused = 0;          // answered 503 and closed: the cap was reached and none was idle
  uint64_t cap_per_peer = 0;     // the most one peer may hold (0: no per-peer cap)
  uint64_t refused_per_peer = 0;  // answered 503 and closed: the peer's cap was reached and none of its was idle
  uint64_t evicted = 0;          // idle connections closed to make room for a new one
  uint64_t header_timeouts = 0;  // closed because a request's header did not arrive in time
  uint64_t idle_timeouts = 0;    // closed after waiting too long for a request
  uint64_t accept_errors = 0;    // accept(2) failures (out of descriptors, mostly)
};

class ConnectionTable {
 public:
  using Clock = std::chrono::steady_clock;
  // `cap_per_peer` 0: no per-peer cap.
  explicit ConnectionTable(uint64_t cap, uint64_t cap_per_peer = 0)
      : cap_(cap < 1 ? 1 : cap), cap_per_peer_(cap_per_peer) {}

  // Why a connection was refused.
  enum class Refusal { kNone, kTotal, kPerPeer };
  // Admits `c` from `peer` ("" when unknown or exempt from the per-peer cap):
  // at the peer's cap after evicting that peer's longest-waiting idle
  // connection; below the total cap at once; at it after evicting the
  // longest-waiting idle connection. Returns its id, or nothing when the
  // connections it would replace are all busy (the caller refuses it;
  // counted here, by reason, which `why` receives).
  std::optional<uint64_t> Admit(const std::shared_ptr<Connection>& c, std::string_view peer = {},
                                Refusal* why = nullptr);
  // Drops a closed connection (from its destructor). Unknown ids are ignored
  // (an evicted connection left the table when it was chosen).
  void Remove(uint64_t id);
  // A connection starts (waiting = true) or stops waiting for a request.
  // `served` says it has answered at least one request.
  void SetWaiting(uint64_t id, bool waiting, bool served);

  void CountHeaderTimeout() { header_timeouts_.fetch_add(1, std::memory_order_relaxed); }
  void CountIdleTimeout() { idle_timeouts_.fetch_add(1, std::memory_order_relaxed); }
  // Returns the accept errors so far, this one included.
  uint64_t CountAcceptError() { return accept_errors_.fetch_add(1, std::memory_order_relaxed) + 1; }
  void CountRefused() { refused_.fetch_add(1, std::memory_order_relaxed); }

  ConnectionStats Stats() const;
  uint64_t cap() const { return cap_; }
  uint64_t cap_per_peer() const { return cap_per_peer_; }

 private:
  struct Entry {
    std::weak_ptr<Connection> conn;
    bool waiting = true;  // no request in progress
    bool served = false;  // answered a request before
    Clock::time_point since;
    std::string peer;     // "" when not counted against a peer's cap
  };
  using Entries = std::unordered_map<uint64_t, Entry>;
  // REQUIRES: mu_ held. The idle entry to evict (among `peer`'s when it is
  // not ""), or end().
  Entries::iterator Idlest(std::string_view peer = {});
  // REQUIRES: mu_ held. Drops an entry and its count against its peer.
  void Erase(Entries::iterator it);

  const uint64_t cap_;
  const uint64_t cap_per_peer_;
  mutable std::mutex mu_;
  Entries entries_;                              // GUARDED_BY(mu_)
  std::unordered_map<std::string, uint64_t> per_peer_;  // connections held per counted peer; GUARDED_BY(mu_)
  uint64_t next_id_ = 1;                         // GUARDED_BY(mu_)
  uint64_t accepted_ = 0, evicted_ = 0;          // GUARDED_BY(mu_)
  std::atomic<uint64_t> refused_{0}, refused_per_peer_{0}, header_timeouts_{0}, idle_timeouts_{0}, accept_errors_{0};
};

}  // namespace affinity
