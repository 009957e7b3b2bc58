#include "base/strings.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <atomic>
#include <random>
#include <memory>

#include <isa-l/crc.h>

#include "absl/strings/escaping.h"

namespace affinity {

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

std::vector<std::string_view> SplitWhitespace(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r')) ++i;
    size_t j = i;
    while (j < s.size() && s[j] != ' ' && s[j] != '\t' && s[j] != '\r') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string_view StripCr(std::string_view s) {
  if (!s.empty() && s.back() == '\r') s.remove_suffix(1);
  return s;
}

std::optional<int64_t> ParseInt64(std::string_view s) {
  int64_t v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::optional<double> ParseDouble(std::string_view s) {
  double v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::string NearestName(std::string_view name, const std::vector<std::string_view>& known, size_t max_edits) {
  auto distance = [](std::string_view a, std::string_view b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      size_t diagonal = row[0];
      row[0] = i;
      for (size_t j = 1; j <= b.size(); ++j) {
        const size_t up = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
        diagonal = up;
      }
    }
    return row[b.size()];
  };
  std::string_view best;
  size_t best_distance = max_edits + 1;
  for (std::string_view k : known)
    if (size_t d = distance(name, k); d < best_distance) best = k, best_distance = d;
  return std::string(best);
}

std::optional<std::string> ReadFile(const std::string& path) {
  // One read into a buffer of the file's size (large snapshot and checkpoint
  // files are read whole at start; a stream would copy them twice).
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return std::nullopt;
  }
  std::string out;
  out.resize(size_t(st.st_size));
  size_t got = 0;
  while (true) {
    if (got == out.size()) out.resize(out.size() + 65536);  // the file grew
    const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    got += size_t(n);
  }
  ::close(fd);
  out.resize(got);
  return out;
}

bool WriteFileAtomic(const std::string& path, std::string_view data) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return false;
  // A failed write leaves no partial file behind (on a full volume it would
  // hold the space), and errno says why it failed.
  auto fail = [&](int err) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    errno = err;
    return false;
  };
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail(n < 0 ? errno : ENOSPC);
    off += size_t(n);
  }
  if (::fsync(fd) != 0) return fail(errno);
  const int closed = ::close(fd);
  fd = -1;
  if (closed != 0) return fail(errno);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return fail(errno);
  return true;
}

bool SyncFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  return (::close(fd) == 0) && ok;
}

uint32_t Crc32c(const void* data, size_t n, uint32_t before) {
  // ISA-L's CRC-32C (iSCSI polynomial), dispatched at run time to the CPU's
  // CRC instructions; its length is an int, so long ranges go in pieces.
  const auto* p = static_cast<const unsigned char*>(data);
  unsigned int crc = before ^ 0xFFFFFFFFu;
  constexpr size_t kPiece = size_t(1) << 30;
  while (n > 0) {
    const size_t m = std::min(n, kPiece);
    crc = crc32_iscsi(const_cast<unsigned char*>(p), int(m), crc);
    p += m;
    n -= m;
  }
  return crc ^ 0xFFFFFFFFu;
}

std::string EncodeFloats(const float* values, size_t n) {
  static_assert(std::endian::native == std::endian::little, "float rows are stored little-endian");
  return absl::Base64Escape(absl::string_view(reinterpret_cast<const char*>(values), n * sizeof(float)));
}

bool DecodeFloats(std::string_view base64, std::vector<float>* values) {
  std::string raw;
  if (!absl::Base64Unescape(absl::string_view(base64.data(), base64.size()), &raw) || raw.size() % sizeof(float) != 0)
    return false;
  values->resize(raw.size() / sizeof(float));
  std::memcpy(values->data(), raw.data(), raw.size());
  return true;
}

std::string NewTimeOrderedId(std::string_view prefix, int64_t now_ms) {
  static const uint64_t tag = std::random_device{}() & 0xFFFF;
  static std::atomic<uint64_t> counter{0};
  const uint64_t n = counter.fetch_add(1, std::memory_order_relaxed) & 0xFFFFFF;
  char digits[12 + 4 + 6 + 1];
  std::snprintf(digits, sizeof digits, "%012llx%04llx%06llx", (unsigned long long)(uint64_t(now_ms) & 0xFFFFFFFFFFFFull),
                (unsigned long long)tag, (unsigned long long)n);
  return std::string(prefix) + digits;
}

}  // namespace affinity
