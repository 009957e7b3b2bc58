// Section files (base/section_file.h) rewritten the way tests need them: in
// the layout earlier versions of a format used, or without some sections.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/section_file.h"
#include "base/strings.h"

namespace affinity::testing {

// A file written with 64-byte aligned sections, in the layout earlier versions
// used: no padding, and a checksum over the header and data, or over the data
// alone. Tests use it to check that files written before still load.

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

// Rewrites the file at path (in `format`), each section through edit(name,
// bytes), which may change its bytes and returns false to drop it. Returns
// how many it dropped, or -1 when the file could not be read or written.
inline int RewriteSections(const std::string& path, const SectionFormat& format,
                           const std::function<bool(const std::string&, std::vector<char>&)>& edit) {
  SectionReader r;
  if (!r.Open(path, {format}).ok()) return -1;
  SectionWriter w(format);
  int dropped = 0;
  for (const std::string& name : r.names()) {
    std::vector<char> bytes;
    r.Get(name, &bytes);
    if (edit(name, bytes))
      w.Add(name, bytes);
    else
      ++dropped;
  }
  return WriteFileAtomic(path, w.data()) ? dropped : -1;
}

// The same, dropping the sections `drop` names and keeping the rest as they are.
inline int DropSections(const std::string& path, const SectionFormat& format,
                        const std::function<bool(const std::string&)>& drop) {
  return RewriteSections(path, format, [&](const std::string& name, std::vector<char>&) { return !drop(name); });
}

}  // namespace affinity::testing
