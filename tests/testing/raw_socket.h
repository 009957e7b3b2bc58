// Raw loopback TCP sockets for tests that hold connections open the way a
// client or a flood would (idle, half-sent), below any HTTP client.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace affinity::testing {

inline int LoopbackSocket() { return ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); }

inline bool ConnectLoopback(int fd, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
}

// A socket connected to 127.0.0.1:port, or -1.
inline int OpenLoopback(int port) {
  const int fd = LoopbackSocket();
  if (fd >= 0 && !ConnectLoopback(fd, port)) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace affinity::testing
