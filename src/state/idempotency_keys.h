// Exactly-once writes for retrying clients (the Idempotency-Key header of
// POST /affinity/feedback and /affinity/entities, docs/openapi.yaml). A write
// with a key stores its response in the same atomic write as its batch
// (Store::IdempotencyRecord); a later request with the key is answered from
// that record instead of being applied again, unless it is a different request
// (another body or route), which is refused. While a request with a key is
// being applied, the key is claimed in this process: a concurrent request with
// it is told to retry (it is not made to wait), so a batch is never applied twice.
// Records older than the window (server.idempotency_window_seconds) read as
// absent and are compacted away (the store's idempotency column family).
// Thread safety: safe for concurrent use.
#pragma once

#include <mutex>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "store/store.h"

namespace affinity {

inline constexpr size_t kMaxIdempotencyKeyBytes = 255;

class IdempotencyKeys {
 public:
  explicit IdempotencyKeys(const Store* store) : store_(store) {}

  // InvalidArgument unless `key` is 1 to 255 printable ASCII characters (0x20-0x7E).
  static absl::Status CheckKey(std::string_view key);
  // The SHA-256 (32 bytes) of a request: method, path and body, each
  // length-prefixed. A retry must send the same bytes to be recognised.
  static absl::StatusOr<std::string> Fingerprint(std::string_view method, std::string_view path,
                                                 std::string_view body);

  // While held, the key is in flight: Begin says kInFlight for it. Released
  // when destroyed, which must come after the write that carries the key.
  class Claim {
   public:
    Claim() = default;
    Claim(IdempotencyKeys* owner, std::string key) : owner_(owner), key_(std::move(key)) {}
    Claim(Claim&& o) noexcept : owner_(o.owner_), key_(std::move(o.key_)) { o.owner_ = nullptr; }
    Claim& operator=(Claim&& o) noexcept;
    Claim(const Claim&) = delete;
    Claim& operator=(const Claim&) = delete;
    ~Claim() { Release(); }
    bool held() const { return owner_ != nullptr; }
    void Release();

   private:
    IdempotencyKeys* owner_ = nullptr;
    std::string key_;
  };

  enum class Outcome {
    kFirst,     // not seen in the window: apply the request, writing `record` with it (claim held)
    kReplay,    // answered before: send `record`'s status and body again
    kReused,    // the key answered a different request: refuse
    kInFlight,  // a request with the key is being applied now: retry later
  };
  struct Begun {
    Outcome outcome = Outcome::kFirst;
    IdempotencyRecord record;  // kFirst: key and fingerprint set; kReplay, kReused: the stored record
    Claim claim;               // held for kFirst only
  };
  // Where a request with `key` and `fingerprint` (Fingerprint()) stands. An
  // error is the store's (a read that failed).
  absl::StatusOr<Begun> Begin(const std::string& key, const std::string& fingerprint);

  // Keys claimed now (tests).
  size_t in_flight() const;

 private:
  const Store* store_;
  mutable std::mutex mu_;
  absl::flat_hash_set<std::string> in_flight_;  // GUARDED_BY(mu_)
};

}  // namespace affinity
