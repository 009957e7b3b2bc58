// Who the client is when the server sits behind a proxy ([server]
// trusted_proxies). A proxy names the client it forwards for in
// X-Forwarded-For, each hop appending the address it heard from; anyone can
// write that header, so it is believed only from a peer the configuration
// trusts, and only up to the right-most address that is not itself trusted
// (the first hop no trusted proxy vouches for). From any other peer the header
// is ignored and the client is the socket's peer.
//
// Thread safety: immutable once parsed.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace affinity {

class TrustedProxies {
 public:
  TrustedProxies() = default;  // trusts no one
  // Addresses ("10.0.0.7", "::1") and networks ("10.0.0.0/8", "fd00::/8");
  // InvalidArgument naming the first entry that is neither.
  static absl::StatusOr<TrustedProxies> Parse(const std::vector<std::string>& entries);

  // Whether `address` (as a socket or a header spells it) is trusted. An IPv4
  // address matches as itself and as its IPv6-mapped form (::ffff:a.b.c.d).
  bool Contains(std::string_view address) const;
  bool empty() const { return nets_.empty(); }

 private:
  struct Net {
    std::array<uint8_t, 16> addr{};  // IPv6, IPv4 as ::ffff:a.b.c.d
    int prefix = 128;                // bits that must match
  };
  std::vector<Net> nets_;
};

// The client of a request that came from socket peer `peer` with the
// X-Forwarded-For list `forwarded_for` (every such header's value, joined with
// ","; may be empty): `peer` unless it is trusted; then the right-most address
// of the list that is not trusted; when every listed address is trusted, the
// left-most; when an entry is not an address, the hop that added it (the
// nearest trusted one before it). Addresses come back as given, trimmed.
std::string ClientAddress(std::string_view peer, std::string_view forwarded_for, const TrustedProxies& trusted);

}  // namespace affinity
