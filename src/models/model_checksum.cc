#include "models/model_checksum.h"

#include <openssl/evp.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

namespace affinity {

absl::StatusOr<std::string> Sha256FileHex(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(path + " is missing (" + std::strerror(errno) + ")");
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
    return absl::InternalError("sha256: cannot start a digest");
  char buf[1 << 16];
  while (in) {
    in.read(buf, sizeof buf);
    if (in.gcount() > 0 && EVP_DigestUpdate(ctx.get(), buf, size_t(in.gcount())) != 1)
      return absl::InternalError("sha256: digest update failed");
  }
  if (in.bad()) return absl::DataLossError("cannot read " + path);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_DigestFinal_ex(ctx.get(), md, &n) != 1) return absl::InternalError("sha256: digest final failed");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(n * 2);
  for (unsigned int i = 0; i < n; ++i) {
    hex.push_back(kHex[md[i] >> 4]);
    hex.push_back(kHex[md[i] & 15]);
  }
  return hex;
}

absl::StatusOr<std::map<std::string, std::string>> ModelFileChecksums(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const char* file : kModelFiles) {
    auto sum = Sha256FileHex(dir + "/" + file);
    if (!sum.ok()) return sum.status();
    out[file] = *sum;
  }
  for (const char* file : kOptionalModelFiles) {
    std::error_code ec;
    if (!std::filesystem::exists(dir + "/" + file, ec)) continue;
    auto sum = Sha256FileHex(dir + "/" + file);
    if (!sum.ok()) return sum.status();
    out[file] = *sum;
  }
  return out;
}

absl::Status VerifyModelFiles(const std::string& dir, const std::map<std::string, std::string>& want) {
  for (const auto& [file, expected] : want) {
    auto found = Sha256FileHex(dir + "/" + file);
    if (!found.ok()) return absl::DataLossError(file + " is missing or unreadable: " + std::string(found.status().message()));
    if (*found != expected)
      return absl::DataLossError(file + " does not match its checksum in registry.json (sha256 " + expected +
                                 " recorded, " + *found + " on disk)");
  }
  for (const char* file : kOptionalModelFiles) {
    std::error_code ec;
    if (!want.count(file) && std::filesystem::exists(dir + "/" + file, ec))
      return absl::DataLossError(std::string(file) + " is not among the files its registry entry checksums");
  }
  return absl::OkStatus();
}

}  // namespace affinity
