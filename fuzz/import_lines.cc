// One file of an importer's format, read a line at a time (data/importers.h,
// ParseImportLines); FUZZ_IMPORT_FILE names the file.
#include <string_view>

#include "data/importers.h"
#include "fuzz_util.h"

namespace {
affinity::ImportFile File() {
  using affinity::ImportFile;
  constexpr std::string_view f = FUZZ_IMPORT_FILE;
  if (f == "native_entities") return ImportFile::kNativeEntities;
  if (f == "native_events") return ImportFile::kNativeEvents;
  if (f == "lightgcn") return ImportFile::kLightgcn;
  if (f == "hetrec_artists") return ImportFile::kHetrecArtists;
  if (f == "hetrec_plays") return ImportFile::kHetrecPlays;
  if (f == "hetrec_friends") return ImportFile::kHetrecFriends;
  return ImportFile::kSnapEdges;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace affinity;
  ParsedDataset d;
  const absl::Status s = ParseImportLines(File(), FUZZ_IMPORT_FILE, fuzz::Text(data, size), 1767225600000, &d);
  if (!s.ok()) {
    const std::string message(s.message());
    fuzz::Require(message.rfind(FUZZ_IMPORT_FILE ":", 0) == 0, "a refused line is named", message);
  }
  return 0;
}
