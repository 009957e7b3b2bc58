// What the harnesses share: the input as text, and an invariant that aborts
// (libFuzzer reports an abort as a crash and keeps the input).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace affinity::fuzz {

inline std::string Text(const uint8_t* data, size_t size) { return std::string(reinterpret_cast<const char*>(data), size); }

// Aborts naming the broken invariant when `ok` is false.
inline void Require(bool ok, const char* what, std::string_view detail = {}) {
  if (ok) return;
  std::fprintf(stderr, "invariant broken: %s %.*s\n", what, int(detail.size()), detail.data());
  std::abort();
}

}  // namespace affinity::fuzz
