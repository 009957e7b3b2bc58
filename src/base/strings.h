// Small parsing helpers for the text formats affinity reads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace affinity {

// Splits on `sep`, keeping empty fields.
std::vector<std::string_view> Split(std::string_view s, char sep);
// Splits on runs of spaces and tabs, dropping empty fields.
std::vector<std::string_view> SplitWhitespace(std::string_view s);
std::string_view StripCr(std::string_view s);

std::optional<int64_t> ParseInt64(std::string_view s);
std::optional<double> ParseDouble(std::string_view s);

// The name of `known` closest to `name` by edit distance, when at most
// `max_edits` edits away (ties: the first), else "". For "did you mean"
// suggestions after an unknown setting or field.
std::string NearestName(std::string_view name, const std::vector<std::string_view>& known, size_t max_edits = 3);

// The first key of a JSON object (anything iterable whose items have `.key`,
// e.g. simdjson's dom::object) that is not in `known`, with the nearest known
// name within two edits ("" when none): what "unknown field" errors name.
struct UnknownKey {
  std::string key, nearest;
};
template <typename Object>
std::optional<UnknownKey> FirstUnknownKey(const Object& obj, const std::vector<std::string_view>& known) {
  for (auto field : obj) {
    bool found = false;
    for (std::string_view k : known) found = found || field.key == k;
    if (!found) return UnknownKey{std::string(field.key), NearestName(field.key, known, 2)};
  }
  return std::nullopt;
}

// Reads a whole file; nullopt when it cannot be opened.
std::optional<std::string> ReadFile(const std::string& path);

// Writes `data` to path atomically: a temp file beside it, fsync, rename. On
// failure the temp file is removed and errno says why (ENOSPC: the volume is full).
bool WriteFileAtomic(const std::string& path, std::string_view data);
// Flushes a written file to disk (fsync).
bool SyncFile(const std::string& path);

// float32 values as little-endian bytes in base64: compact and exact (audit
// records, logged ranker inputs). Decode refuses text that is not base64 or not
// a whole number of floats.
std::string EncodeFloats(const float* values, size_t n);

// `prefix`, then 12 hex digits of the wall-clock millisecond, 4 of this
// process's random tag and 6 of a process-wide counter: unique within a
// process (the counter would have to wrap within one millisecond) and ordered
// by time, so records keyed by such ids reach the store in key order and its
// compactions move files down instead of rewriting them. Thread-safe.
std::string NewTimeOrderedId(std::string_view prefix, int64_t now_ms);
bool DecodeFloats(std::string_view base64, std::vector<float>* values);

// CRC-32C (Castagnoli) of a byte range, for snapshot and checkpoint file checksums.
// `before`: the CRC of the bytes preceding these (extends it; 0: none).
uint32_t Crc32c(const void* data, size_t n, uint32_t before = 0);

}  // namespace affinity
