#include "base/section_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <vector>

#include "base/status.h"
#include "base/strings.h"

namespace affinity {
namespace {

// Reads exactly n bytes at offset; false on an error or a short file.
bool PreadAll(int fd, void* dst, size_t n, uint64_t offset) {
  auto* p = static_cast<char*>(dst);
  while (n > 0) {
    const ssize_t got = ::pread(fd, p, n, off_t(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    p += got;
    n -= size_t(got);
    offset += uint64_t(got);
  }
  return true;
}

}  // namespace

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

SectionReader::~SectionReader() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status SectionReader::Open(const std::string& path, std::string_view magic, std::string_view legacy_magic) {
  path_ = path;
  sections_.clear();
  status_ = absl::OkStatus();
  if (fd_ >= 0) ::close(fd_);
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd_ < 0 || ::fstat(fd_, &st) != 0) return absl::NotFoundError("cannot open " + path);
  file_bytes_ = uint64_t(st.st_size);
  char head[8];
  if (file_bytes_ < 8 || !PreadAll(fd_, head, 8, 0))
    return absl::DataLossError(path + " is not a file of this kind (its magic differs)");
  const std::string_view h(head, 8);
  legacy_ = !legacy_magic.empty() && h == legacy_magic.substr(0, 8);
  if (!legacy_ && h != magic.substr(0, 8))
    return absl::DataLossError(path + " is not a file of this kind (its magic differs)");
  auto truncated = [&] { return absl::DataLossError(path + " is truncated"); };
  uint64_t pos = 8;
  while (pos < file_bytes_) {
    Section s;
    s.header_at = pos;
    uint32_t nl;
    if (file_bytes_ - pos < 4 || !PreadAll(fd_, &nl, 4, pos)) return truncated();
    pos += 4;
    if (nl > file_bytes_ - pos || file_bytes_ - pos - nl < 8) return truncated();
    std::string name(nl, '\0');
    if (!PreadAll(fd_, name.data(), nl, pos)) return truncated();
    pos += nl;
    uint64_t n;
    if (!PreadAll(fd_, &n, 8, pos)) return truncated();
    pos += 8;
    if (n > file_bytes_ - pos || file_bytes_ - pos - n < 4) return truncated();
    s.data_at = pos;
    s.bytes = n;
    AFF_RETURN_IF_ERROR(Verify(name, s));
    sections_[name] = s;
    pos += n + 4;
  }
  return absl::OkStatus();
}

absl::Status SectionReader::Verify(const std::string& name, const Section& s) {
  // Through a small buffer that stays in cache: every section is checked here,
  // before any is used, so a damaged header (a renamed section) is caught too.
  auto unreadable = [&] { return absl::DataLossError("cannot read section " + name + " of " + path_); };
  std::vector<char> buf(std::min<uint64_t>(s.data_at + s.bytes + 4 - s.header_at, uint64_t(4) << 20));
  uint32_t crc = 0;
  uint64_t at = legacy_ ? s.data_at : s.header_at;
  const uint64_t end = s.data_at + s.bytes;
  while (at < end) {
    const size_t m = size_t(std::min<uint64_t>(buf.size(), end - at));
    if (!PreadAll(fd_, buf.data(), m, at)) return unreadable();
    crc = Crc32c(buf.data(), m, crc);
    at += m;
  }
  uint32_t stored = 0;
  if (!PreadAll(fd_, &stored, 4, end)) return unreadable();
  if (crc != stored) return absl::DataLossError("section " + name + " of " + path_ + " failed its checksum");
  return absl::OkStatus();
}

bool SectionReader::Read(const std::string& name, const Section& s, void* dst, size_t n) {
  if (n == 0 || PreadAll(fd_, dst, n, s.data_at)) return true;
  if (status_.ok()) status_ = absl::DataLossError("cannot read section " + name + " of " + path_);
  return false;
}

}  // namespace affinity
