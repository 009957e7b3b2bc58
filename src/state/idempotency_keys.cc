#include "state/idempotency_keys.h"

#include <openssl/evp.h>

#include <cstdint>
#include <memory>

#include "base/status.h"

namespace affinity {

absl::Status IdempotencyKeys::CheckKey(std::string_view key) {
  if (key.empty() || key.size() > kMaxIdempotencyKeyBytes)
    return absl::InvalidArgumentError("an idempotency key is 1 to 255 characters, not " +
                                      std::to_string(key.size()));
  for (size_t i = 0; i < key.size(); ++i) {
    const auto c = static_cast<unsigned char>(key[i]);
    if (c < 0x20 || c > 0x7E)
      return absl::InvalidArgumentError("an idempotency key is printable ASCII (0x20 to 0x7E); character " +
                                        std::to_string(i) + " is not");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> IdempotencyKeys::Fingerprint(std::string_view method, std::string_view path,
                                                         std::string_view body) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
    return absl::InternalError("SHA-256 is not available");
  for (std::string_view part : {method, path, body}) {
    const uint64_t n = part.size();
    if (EVP_DigestUpdate(ctx.get(), &n, sizeof n) != 1 || EVP_DigestUpdate(ctx.get(), part.data(), part.size()) != 1)
      return absl::InternalError("SHA-256 failed");
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), digest, &len) != 1) return absl::InternalError("SHA-256 failed");
  return std::string(reinterpret_cast<const char*>(digest), len);
}

IdempotencyKeys::Claim& IdempotencyKeys::Claim::operator=(Claim&& o) noexcept {
  if (this != &o) {
    Release();
    owner_ = o.owner_;
    key_ = std::move(o.key_);
    o.owner_ = nullptr;
  }
  return *this;
}

void IdempotencyKeys::Claim::Release() {
  if (!owner_) return;
  std::lock_guard<std::mutex> lock(owner_->mu_);
  owner_->in_flight_.erase(key_);
  owner_ = nullptr;
}

absl::StatusOr<IdempotencyKeys::Begun> IdempotencyKeys::Begin(const std::string& key, const std::string& fingerprint) {
  Begun b;
  auto answered = [&](IdempotencyRecord stored) {
    b.outcome = stored.fingerprint == fingerprint ? Outcome::kReplay : Outcome::kReused;
    b.record = std::move(stored);
    return std::move(b);
  };
  // A replay is a read: concurrent ones need no claim.
  AFF_ASSIGN_OR_RETURN(std::optional<IdempotencyRecord> stored, store_->GetIdempotencyRecord(key));
  if (stored) return answered(*std::move(stored));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!in_flight_.insert(key).second) {
      b.outcome = Outcome::kInFlight;
      return b;
    }
  }
  Claim claim(this, key);
  // Read again under the claim: a write with the key may have finished (and
  // released its claim) between the read above and the claim. A claim is
  // released only after its write, so from here on no other request applies it.
  AFF_ASSIGN_OR_RETURN(stored, store_->GetIdempotencyRecord(key));
  if (stored) return answered(*std::move(stored));
  b.outcome = Outcome::kFirst;
  b.record.key = key;
  b.record.fingerprint = fingerprint;
  b.claim = std::move(claim);
  return b;
}

size_t IdempotencyKeys::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_.size();
}

}  // namespace affinity
