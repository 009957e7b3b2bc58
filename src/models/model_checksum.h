// The SHA-256 of a model version's files (OpenSSL EVP), recorded in its
// registry entry when it is registered and checked at every load, so that a
// damaged model.json is refused instead of serving wrong scores.
#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace affinity {

// The files of a version's directory that are checksummed: every version
// has the first two; reference.json (the drift reference) where it was saved.
inline constexpr const char* kModelFiles[] = {"model.json", "ranker.json"};
inline constexpr const char* kOptionalModelFiles[] = {"reference.json"};

// The SHA-256 of the file at `path`, in lower-case hex.
absl::StatusOr<std::string> Sha256FileHex(const std::string& path);
// Every file of kModelFiles (and of kOptionalModelFiles present) in `dir`, by name.
absl::StatusOr<std::map<std::string, std::string>> ModelFileChecksums(const std::string& dir);
// OK when each file `want` names holds what it says and no file a load reads
// is absent from it; DataLoss naming the first file that is missing, differs
// (with both digests) or is not checksummed.
absl::Status VerifyModelFiles(const std::string& dir, const std::map<std::string, std::string>& want);

}  // namespace affinity
