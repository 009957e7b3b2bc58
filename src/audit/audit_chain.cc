#include "audit/audit_chain.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "audit/record_codec.h"

namespace affinity {
namespace {

constexpr uint8_t kEntryVersion = 1;
constexpr uint8_t kCheckpointVersion = 1;

void PutHash(std::string* out, const ChainHash& h) { out->append(reinterpret_cast<const char*>(h.data()), h.size()); }

bool GetHash(std::string_view in, size_t* pos, ChainHash* h) {
  if (in.size() - *pos < h->size()) return false;
  std::memcpy(h->data(), in.data() + *pos, h->size());
  *pos += h->size();
  return true;
}

std::string BigEndian(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) s[size_t(i)] = char(v & 0xFF);
  return s;
}

using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;

// The first 8 bytes of the SHA-256 of the raw public key, in hex.
std::string KeyIdOf(EVP_PKEY* key) {
  unsigned char raw[64];
  size_t n = sizeof(raw);
  if (EVP_PKEY_get_raw_public_key(key, raw, &n) != 1) return "";
  const ChainHash h = Sha256Of(std::string_view(reinterpret_cast<const char*>(raw), n));
  return HexOf(std::string_view(reinterpret_cast<const char*>(h.data()), 8));
}

absl::StatusOr<std::string> ReadFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(std::string("cannot read the ") + what + " " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The PEM text of a key, private or public.
std::string PemOf(EVP_PKEY* key, bool is_private) {
  BioPtr bio(BIO_new(BIO_s_mem()), &BIO_free);
  const int ok = is_private ? PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)
                            : PEM_write_bio_PUBKEY(bio.get(), key);
  if (ok != 1) return "";
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, size_t(n));
}

absl::Status WriteNewFile(const std::string& path, const std::string& bytes, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0)
    return absl::FailedPreconditionError("cannot create " + path + ": " + std::strerror(errno) +
                                         (errno == EEXIST ? " (a key is never overwritten)" : ""));
  const bool ok = ::write(fd, bytes.data(), bytes.size()) == ssize_t(bytes.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return absl::InternalError("cannot write " + path);
  return absl::OkStatus();
}

}  // namespace

ChainHash Sha256Of(std::string_view bytes) {
  ChainHash h{};
  unsigned int n = 0;
  EVP_Digest(bytes.data(), bytes.size(), h.data(), &n, EVP_sha256(), nullptr);
  return h;
}

std::string HexOf(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::string EncodeChainEntry(const ChainEntry& e) {
  std::string out;
  audit_internal::Encoder enc(&out);
  enc.U8(kEntryVersion);
  enc.U8(uint8_t(e.kind));
  enc.Varint(e.sequence);
  PutHash(&out, e.previous);
  PutHash(&out, e.record);
  enc.Str(e.request_id);
  enc.Varint(uint64_t(e.written_ms));
  return out;
}

bool DecodeChainEntry(std::string_view bytes, ChainEntry* e) {
  audit_internal::Decoder d(bytes);
  if (d.U8() != kEntryVersion) return false;
  const uint8_t kind = d.U8();
  if (kind != uint8_t(ChainEntryKind::kRecord) && kind != uint8_t(ChainEntryKind::kRedaction)) return false;
  e->kind = ChainEntryKind(kind);
  e->sequence = d.Varint();
  // The two hashes are 64 raw bytes: read as a string of known length.
  const size_t at = bytes.size() - d.Remaining();
  size_t pos = at;
  if (!d.ok() || !GetHash(bytes, &pos, &e->previous) || !GetHash(bytes, &pos, &e->record)) return false;
  audit_internal::Decoder rest(bytes.substr(pos));
  e->request_id = std::string(rest.Str());
  e->written_ms = int64_t(rest.Varint());
  return rest.done();
}

std::string EncodeCheckpoint(const ChainCheckpoint& c) {
  std::string out;
  audit_internal::Encoder enc(&out);
  enc.U8(kCheckpointVersion);
  enc.Varint(c.sequence);
  PutHash(&out, c.head);
  enc.Varint(uint64_t(c.written_ms));
  enc.Str(c.key_id);
  enc.Str(c.signature);
  return out;
}

bool DecodeCheckpoint(std::string_view bytes, ChainCheckpoint* c) {
  audit_internal::Decoder d(bytes);
  if (d.U8() != kCheckpointVersion) return false;
  c->sequence = d.Varint();
  size_t pos = bytes.size() - d.Remaining();
  if (!d.ok() || !GetHash(bytes, &pos, &c->head)) return false;
  audit_internal::Decoder rest(bytes.substr(pos));
  c->written_ms = int64_t(rest.Varint());
  c->key_id = std::string(rest.Str());
  c->signature = std::string(rest.Str());
  return rest.done();
}

std::string CheckpointMessage(uint64_t sequence, const ChainHash& head) {
  std::string m = "affinity audit checkpoint v1\n";
  m += BigEndian(sequence);
  PutHash(&m, head);
  return m;
}

std::string ChainEntryKey(uint64_t sequence) { return kChainEntryPrefix + BigEndian(sequence); }
std::string CheckpointKey(uint64_t sequence) { return kCheckpointPrefix + BigEndian(sequence); }

bool SequenceOfKey(std::string_view key, char prefix, uint64_t* sequence) {
  if (key.size() != 9 || key[0] != prefix) return false;
  uint64_t v = 0;
  for (size_t i = 1; i < 9; ++i) v = (v << 8) | uint8_t(key[i]);
  *sequence = v;
  return true;
}

struct CheckpointSigner::Key {
  PkeyPtr pkey{nullptr, &EVP_PKEY_free};
};
CheckpointSigner::~CheckpointSigner() = default;

absl::StatusOr<std::shared_ptr<const CheckpointSigner>> CheckpointSigner::Load(const std::string& path,
                                                                               const std::string& data_dir) {
  const std::string setting = "audit.signing_key " + path;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return absl::NotFoundError(setting + ": cannot read it (" + std::strerror(errno) + ")");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", unsigned(st.st_mode & 07777));
    return absl::PermissionDeniedError(setting + " has mode " + mode +
                                       ": a signing key must be readable by its owner only (chmod 600 " + path + ")");
  }
  std::error_code ec;
  const std::string key_at = std::filesystem::weakly_canonical(path, ec).string();
  const std::string dir = std::filesystem::weakly_canonical(data_dir, ec).string();
  if (!data_dir.empty() && !dir.empty() && key_at.rfind(dir + "/", 0) == 0)
    return absl::FailedPreconditionError(setting + " lies inside the data dir: keep it where a copy of the data "
                                                   "dir does not take it along");
  auto pem = ReadFile(path, "signing key");
  if (!pem.ok()) return pem.status();
  BioPtr bio(BIO_new_mem_buf(pem->data(), int(pem->size())), &BIO_free);
  auto signer = std::shared_ptr<CheckpointSigner>(new CheckpointSigner());
  signer->key_ = std::make_unique<Key>();
  signer->key_->pkey.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!signer->key_->pkey || EVP_PKEY_id(signer->key_->pkey.get()) != EVP_PKEY_ED25519)
    return absl::InvalidArgumentError(setting + " is not an Ed25519 private key in PEM (make one with "
                                                "`affinity audit keygen --out FILE`)");
  signer->key_id_ = KeyIdOf(signer->key_->pkey.get());
  return std::shared_ptr<const CheckpointSigner>(std::move(signer));
}

std::string CheckpointSigner::Sign(std::string_view message) const {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  std::string sig(64, '\0');
  size_t n = sig.size();
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_->pkey.get()) != 1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &n,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1)
    return "";
  sig.resize(n);
  return sig;
}

struct CheckpointVerifier::Key {
  PkeyPtr pkey{nullptr, &EVP_PKEY_free};
};
CheckpointVerifier::~CheckpointVerifier() = default;

absl::StatusOr<std::unique_ptr<CheckpointVerifier>> CheckpointVerifier::Load(const std::string& path) {
  auto pem = ReadFile(path, "public key");
  if (!pem.ok()) return pem.status();
  BioPtr bio(BIO_new_mem_buf(pem->data(), int(pem->size())), &BIO_free);
  auto v = std::unique_ptr<CheckpointVerifier>(new CheckpointVerifier());
  v->key_ = std::make_unique<Key>();
  v->key_->pkey.reset(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!v->key_->pkey || EVP_PKEY_id(v->key_->pkey.get()) != EVP_PKEY_ED25519)
    return absl::InvalidArgumentError(path + " is not an Ed25519 public key in PEM (the .pub file of "
                                             "`affinity audit keygen`)");
  v->key_id_ = KeyIdOf(v->key_->pkey.get());
  return v;
}

bool CheckpointVerifier::Verify(std::string_view message, std::string_view signature) const {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  return ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key_->pkey.get()) == 1 &&
         EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                          reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
}

absl::StatusOr<std::string> GenerateSigningKey(const std::string& path) {
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr),
                                                                  &EVP_PKEY_CTX_free);
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_keygen(ctx.get(), &raw) != 1)
    return absl::InternalError("cannot generate an Ed25519 key");
  PkeyPtr key(raw, &EVP_PKEY_free);
  const std::string pub_path = path + ".pub";
  if (std::filesystem::exists(pub_path))
    return absl::FailedPreconditionError("cannot create " + pub_path + ": it exists (a key is never overwritten)");
  if (auto st = WriteNewFile(path, PemOf(key.get(), true), 0600); !st.ok()) return st;
  if (auto st = WriteNewFile(pub_path, PemOf(key.get(), false), 0644); !st.ok()) return st;
  return pub_path;
}

}  // namespace affinity
