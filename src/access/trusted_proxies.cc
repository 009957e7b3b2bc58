#include "access/trusted_proxies.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"

namespace affinity {
namespace {

// `text` as an IPv6 address (IPv4 mapped), or nothing.
std::optional<std::array<uint8_t, 16>> ParseAddress(std::string_view text) {
  if (text.size() > 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  char buf[INET6_ADDRSTRLEN];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  std::array<uint8_t, 16> out{};
  in_addr v4;
  if (inet_pton(AF_INET, buf, &v4) == 1) {
    out[10] = out[11] = 0xff;
    std::memcpy(out.data() + 12, &v4, 4);
    return out;
  }
  in6_addr v6;
  if (inet_pton(AF_INET6, buf, &v6) == 1) {
    std::memcpy(out.data(), &v6, 16);
    return out;
  }
  return std::nullopt;
}

bool IsMappedV4(const std::array<uint8_t, 16>& a) {
  for (int i = 0; i < 10; ++i)
    if (a[i] != 0) return false;
  return a[10] == 0xff && a[11] == 0xff;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

absl::StatusOr<TrustedProxies> TrustedProxies::Parse(const std::vector<std::string>& entries) {
  TrustedProxies out;
  for (const std::string& entry : entries) {
    auto bad = [&] {
      return absl::InvalidArgumentError(
          absl::StrCat("'", entry, "' is not an address or a network (10.0.0.7, 10.0.0.0/8, fd00::/8)"));
    };
    const size_t slash = entry.find('/');
    const std::optional<std::array<uint8_t, 16>> addr = ParseAddress(std::string_view(entry).substr(0, slash));
    if (!addr) return bad();
    Net net{*addr, 128};
    if (slash != std::string::npos) {
      int bits = 0;
      const int max_bits = IsMappedV4(*addr) && entry.find(':') == std::string::npos ? 32 : 128;
      const char* first = entry.data() + slash + 1;
      const char* last = entry.data() + entry.size();
      const auto [end, ec] = std::from_chars(first, last, bits);
      if (first == last || ec != std::errc() || end != last || bits < 0 || bits > max_bits) return bad();
      net.prefix = max_bits == 32 ? 96 + bits : bits;
    }
    out.nets_.push_back(net);
  }
  return out;
}

bool TrustedProxies::Contains(std::string_view address) const {
  if (nets_.empty()) return false;
  const std::optional<std::array<uint8_t, 16>> a = ParseAddress(Trim(address));
  if (!a) return false;
  for (const Net& n : nets_) {
    const int whole = n.prefix / 8, rest = n.prefix % 8;
    if (std::memcmp(a->data(), n.addr.data(), size_t(whole)) != 0) continue;
    if (rest != 0) {
      const uint8_t mask = uint8_t(0xff << (8 - rest));
      if ((((*a)[size_t(whole)]) & mask) != (n.addr[size_t(whole)] & mask)) continue;
    }
    return true;
  }
  return false;
}

std::string ClientAddress(std::string_view peer, std::string_view forwarded_for, const TrustedProxies& trusted) {
  if (!trusted.Contains(peer)) return std::string(peer);
  std::string_view client = peer;  // the nearest hop a trusted proxy vouches for, so far
  while (true) {
    const size_t comma = forwarded_for.rfind(',');
    const std::string_view hop = Trim(comma == std::string_view::npos ? forwarded_for : forwarded_for.substr(comma + 1));
    if (hop.empty() && comma == std::string_view::npos) break;  // the list's end (or no list)
    if (!ParseAddress(hop)) break;  // not an address: the hop that added it is as far as the chain goes
    client = hop;
    if (!trusted.Contains(hop)) break;
    if (comma == std::string_view::npos) break;
    forwarded_for = forwarded_for.substr(0, comma);
  }
  return std::string(client);
}

}  // namespace affinity
