// Rewrites a section file (base/section_file.h) written with 64-byte aligned
// sections into the layout earlier versions of a format used: no padding, and
// a checksum over the header and data, or over the data alone. Tests use it to
// check that files written before still load.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "base/strings.h"

namespace affinity::testing {

inline std::string UnalignedSections(const std::string& aligned, std::string_view magic, bool checksum_covers_header) {
  std::string out(magic.substr(0, 8));
  size_t pos = 8;
  while (pos < aligned.size()) {
    uint32_t nl;
    uint64_t bytes;
    std::memcpy(&nl, aligned.data() + pos, 4);
    std::memcpy(&bytes, aligned.data() + pos + 4 + nl, 8);
    const size_t data = (pos + 4 + nl + 8 + 63) / 64 * 64;
    const size_t header_at = out.size();
    out.append(aligned, pos, 4 + nl + 8);
    const size_t data_at = out.size();
    out.append(aligned, data, bytes);
    const size_t from = checksum_covers_header ? header_at : data_at;
    const uint32_t crc = Crc32c(out.data() + from, out.size() - from);
    out.append(reinterpret_cast<const char*>(&crc), 4);
    pos = data + bytes + 4;
  }
  return out;
}

}  // namespace affinity::testing
