#include "base/section_file.h"

#include <cstring>

#include "base/status.h"
#include "base/strings.h"

namespace affinity {

namespace {
uint64_t AlignUp(uint64_t pos, size_t align) { return align <= 1 ? pos : (pos + align - 1) / align * align; }
}  // namespace

SectionWriter::SectionWriter(const SectionFormat& format) : align_(format.align) {
  out_.append(format.magic.substr(0, 8));
}

void SectionWriter::AddBytes(std::string_view name, const void* data, size_t bytes) {
  const uint32_t nl = uint32_t(name.size());
  const uint64_t n = bytes;
  const size_t start = out_.size();
  out_.append(reinterpret_cast<const char*>(&nl), 4);
  out_.append(name);
  out_.append(reinterpret_cast<const char*>(&n), 8);
  out_.append(AlignUp(out_.size(), align_) - out_.size(), '\0');
  if (bytes) out_.append(static_cast<const char*>(data), bytes);
  const uint32_t crc = Crc32c(out_.data() + start, out_.size() - start);
  out_.append(reinterpret_cast<const char*>(&crc), 4);
}

SectionReader::~SectionReader() = default;

absl::Status SectionReader::Open(const std::string& path, std::initializer_list<SectionFormat> formats) {
  path_ = path;
  sections_.clear();
  map_.reset();
  base_ = nullptr;
  viewed_bytes_ = copied_bytes_ = 0;
  AFF_ASSIGN_OR_RETURN(map_, MappedFile::Open(path));
  base_ = map_->data();
  file_bytes_ = map_->size();
  auto foreign = [&] { return absl::DataLossError(path + " is not a file of this kind (its magic differs)"); };
  if (file_bytes_ < 8) return foreign();
  const std::string_view head(base_, 8);
  const SectionFormat* found = nullptr;
  for (const SectionFormat& f : formats)
    if (!found && head == f.magic.substr(0, 8)) found = &f;
  if (!found) return foreign();
  format_ = *found;
  auto truncated = [&] { return absl::DataLossError(path + " is truncated"); };
  uint64_t pos = 8;
  while (pos < file_bytes_) {
    Section s;
    s.header_at = pos;
    uint32_t nl;
    if (file_bytes_ - pos < 4) return truncated();
    std::memcpy(&nl, base_ + pos, 4);
    pos += 4;
    if (nl > file_bytes_ - pos || file_bytes_ - pos - nl < 8) return truncated();
    std::string name(base_ + pos, nl);
    pos += nl;
    uint64_t n;
    std::memcpy(&n, base_ + pos, 8);
    pos = AlignUp(pos + 8, format_.align);
    if (pos > file_bytes_ || n > file_bytes_ - pos || file_bytes_ - pos - n < 4) return truncated();
    s.data_at = pos;
    s.bytes = n;
    // Every section is checked here, before any is used, so a damaged header
    // (a renamed section) is caught too.
    const uint64_t from = format_.checksum_covers_header ? s.header_at : s.data_at;
    uint32_t stored;
    std::memcpy(&stored, base_ + s.data_at + n, 4);
    if (Crc32c(base_ + from, s.data_at + n - from) != stored)
      return absl::DataLossError("section " + name + " of " + path_ + " failed its checksum");
    sections_[name] = s;
    pos += n + 4;
  }
  return absl::OkStatus();
}

std::pair<const void*, size_t> SectionReader::Find(const std::string& name, size_t element_bytes) {
  auto it = sections_.find(name);
  if (it == sections_.end()) return {nullptr, 0};
  return {base_ + it->second.data_at, size_t(it->second.bytes / element_bytes)};
}

}  // namespace affinity
