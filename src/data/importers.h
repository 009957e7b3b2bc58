// Dataset importers: each reads a public or native format, checks every line
// (an error names the file and line), and loads entities and events through the
// Ingestor in one validated step, so a bad file imports nothing.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "state/ingestor.h"

namespace affinity {

struct ImportStats {
  size_t entities = 0;
  size_t events = 0;
  bool ordered = true;  // ParsedDataset::ordered; false is also recorded in the store (kMetaUnorderedTimelines)
};

// format: native (alias synthetic), hetrec-lastfm, lightgcn, snap-edges.
absl::Status ImportDataset(const std::string& format, const std::string& path, int64_t now_ms,
                           Ingestor* ingestor, ImportStats* stats);

// Parsed forms, shared with evaluation.
struct ParsedDataset {
  std::vector<RawEntity> entities;
  std::vector<RawEvent> events;
  Where entities_where{"entities"}, events_where{"events"};
  // False when the events carry neither times nor a meaningful order (HetRec
  // play counts, listed by artist id): no session neighbours are built from them.
  bool ordered = true;
};
absl::Status ParseNative(const std::string& dir, ParsedDataset* out);
absl::Status ParseLightgcn(const std::string& dir_or_file, int64_t ts, ParsedDataset* out);
absl::Status ParseHetrecLastfm(const std::string& dir, int64_t ts, ParsedDataset* out);
absl::Status ParseSnapEdges(const std::string& file, int64_t ts, ParsedDataset* out);

// One file of a format, read a line at a time: the seam the importers' fuzz
// harnesses use. ParseImportLines parses `text` as the whole of such a file
// (named `name` in errors; `ts` for formats without times) into *out, with
// the checks the file's own parser makes line by line.
enum class ImportFile { kNativeEntities, kNativeEvents, kLightgcn, kHetrecArtists, kHetrecPlays, kHetrecFriends, kSnapEdges };
absl::Status ParseImportLines(ImportFile file, const std::string& name, std::string_view text, int64_t ts,
                              ParsedDataset* out);

}  // namespace affinity
