#include "base/section_file.h"

#include "base/strings.h"

namespace affinity {

SectionWriter::SectionWriter(std::string_view magic) { out_.append(magic.substr(0, 8)); }

void SectionWriter::AddBytes(std::string_view name, const void* data, size_t bytes) {
  const uint32_t nl = uint32_t(name.size());
  const uint64_t n = bytes;
  const size_t start = out_.size();
  out_.append(reinterpret_cast<const char*>(&nl), 4);
  out_.append(name);
  out_.append(reinterpret_cast<const char*>(&n), 8);
  if (bytes) out_.append(static_cast<const char*>(data), bytes);
  const uint32_t crc = Crc32c(out_.data() + start, out_.size() - start);
  out_.append(reinterpret_cast<const char*>(&crc), 4);
}

absl::Status SectionReader::Open(const std::string& path, std::string_view magic, std::string_view legacy_magic) {
  path_ = path;
  sections_.clear();
  auto bytes = ReadFile(path);
  if (!bytes) return absl::NotFoundError("cannot open " + path);
  data_ = std::move(*bytes);
  auto starts_with = [&](std::string_view m) { return m.size() == 8 && data_.size() >= 8 && data_.compare(0, 8, m) == 0; };
  const bool legacy = !legacy_magic.empty() && starts_with(legacy_magic);
  if (!legacy && !starts_with(magic)) return absl::DataLossError(path + " is not a file of this kind (its magic differs)");
  auto truncated = [&] { return absl::DataLossError(path + " is truncated"); };
  size_t pos = 8;
  while (pos < data_.size()) {
    const size_t start = pos;
    uint32_t nl;
    uint64_t n;
    if (pos + 4 > data_.size()) return truncated();
    std::memcpy(&nl, data_.data() + pos, 4);
    pos += 4;
    if (nl > data_.size() - pos || data_.size() - pos - nl < 8) return truncated();
    std::string name(data_.data() + pos, nl);
    pos += nl;
    std::memcpy(&n, data_.data() + pos, 8);
    pos += 8;
    if (n > data_.size() - pos || data_.size() - pos - n < 4) return truncated();
    uint32_t crc;
    std::memcpy(&crc, data_.data() + pos + n, 4);
    const uint32_t want = legacy ? Crc32c(data_.data() + pos, n) : Crc32c(data_.data() + start, pos + n - start);
    if (want != crc) return absl::DataLossError("section " + name + " of " + path + " failed its checksum");
    sections_[name] = {pos, n};
    pos += n + 4;
  }
  return absl::OkStatus();
}

}  // namespace affinity
