// The audit chain (docs/security.md, "The audit chain"): the format of its
// entries and checkpoints, their keys in the store's audit chain key space
// (store/store.h, Store::AuditWrite), and the Ed25519 keys that sign
// checkpoints (OpenSSL EVP; PEM files).
//
// Entry n (key "e" + n big-endian): the version, the kind (a record, or the
// redaction of one), n, the SHA-256 of entry n-1's bytes (zeros for entry 1),
// the SHA-256 of the record's bytes, the request id and the write time. The
// chain's hash covers the entry, not the record, so a record can be redacted
// (its bytes deleted) while its entry stays; the redaction is an entry of its
// own naming the request id and the hash of what it removed.
// Checkpoint at n (key "k" + n big-endian): n, the SHA-256 of entry n (the
// head), when it was taken, and, when a key is configured, the key's id and
// an Ed25519 signature of the message CheckpointMessage(n, head).
// "s": the write time of entry 1 (the chain's start), kept when a prefix is
// pruned: records written before it were written before the chain.
// Thread safety: pure functions; the key classes are immutable after Load.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace affinity {

using ChainHash = std::array<uint8_t, 32>;
ChainHash Sha256Of(std::string_view bytes);
std::string HexOf(std::string_view bytes);
inline std::string HexOf(const ChainHash& h) { return HexOf(std::string_view(reinterpret_cast<const char*>(h.data()), h.size())); }

enum class ChainEntryKind : uint8_t { kRecord = 1, kRedaction = 2 };

struct ChainEntry {
  uint64_t sequence = 0;
  ChainEntryKind kind = ChainEntryKind::kRecord;
  ChainHash previous{};
  ChainHash record{};      // of the record's bytes (a redaction: of the bytes it removed)
  std::string request_id;  // the record's (a redaction: the redacted record's)
  int64_t written_ms = 0;
};
std::string EncodeChainEntry(const ChainEntry& e);
bool DecodeChainEntry(std::string_view bytes, ChainEntry* e);

struct ChainCheckpoint {
  uint64_t sequence = 0;
  ChainHash head{};
  int64_t written_ms = 0;
  std::string key_id;     // "" when unsigned
  std::string signature;  // Ed25519, 64 bytes; "" when unsigned
};
std::string EncodeCheckpoint(const ChainCheckpoint& c);
bool DecodeCheckpoint(std::string_view bytes, ChainCheckpoint* c);
// What a checkpoint's signature signs.
std::string CheckpointMessage(uint64_t sequence, const ChainHash& head);

inline constexpr char kChainEntryPrefix[] = "e";
inline constexpr char kCheckpointPrefix[] = "k";
inline constexpr char kChainStartKey[] = "s";
std::string ChainEntryKey(uint64_t sequence);
std::string CheckpointKey(uint64_t sequence);
// The sequence of an entry or checkpoint key; false for any other key.
bool SequenceOfKey(std::string_view key, char prefix, uint64_t* sequence);

// The private key that signs checkpoints. Load refuses a file readable or
// writable by anyone but its owner (mode 0600 or stricter), one inside
// data_dir, and one that is not an Ed25519 private key in PEM.
class CheckpointSigner {
 public:
  static absl::StatusOr<std::shared_ptr<const CheckpointSigner>> Load(const std::string& path,
                                                                      const std::string& data_dir);
  ~CheckpointSigner();
  std::string Sign(std::string_view message) const;  // "" when signing fails
  const std::string& key_id() const { return key_id_; }

 private:
  struct Key;
  std::unique_ptr<Key> key_;
  std::string key_id_;
};

// A public key that checks checkpoints' signatures (PEM).
class CheckpointVerifier {
 public:
  static absl::StatusOr<std::unique_ptr<CheckpointVerifier>> Load(const std::string& path);
  ~CheckpointVerifier();
  bool Verify(std::string_view message, std::string_view signature) const;
  const std::string& key_id() const { return key_id_; }

 private:
  struct Key;
  std::unique_ptr<Key> key_;
  std::string key_id_;
};

// Writes a fresh Ed25519 key pair: the private key at `path` (created with
// mode 0600; an existing file is refused) and the public key at path + ".pub".
// Returns the public key's path.
absl::StatusOr<std::string> GenerateSigningKey(const std::string& path);

}  // namespace affinity
