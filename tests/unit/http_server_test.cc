// The HTTP server's connections as a budget: the cap, idle connections making
// room, refusals when every connection is busy, a trickling header cut off,
// and accept errors backing off when the process is out of descriptors.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "api/http_server.h"
#include "testing/http_client.h"
#include "testing/raw_socket.h"

namespace affinity {
namespace {

using namespace std::chrono_literals;

using testing::ConnectLoopback;
using testing::LoopbackSocket;
using testing::OpenLoopback;

void Send(int fd, const std::string& s) { ASSERT_EQ(::send(fd, s.data(), s.size(), MSG_NOSIGNAL), ssize_t(s.size())); }

// What arrives on `fd` until the peer closes it or `wait` passes; `closed`
// says which.
std::string Receive(int fd, std::chrono::milliseconds wait, bool* closed) {
  std::string out;
  *closed = false;
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (::poll(&p, 1, int(std::max<int64_t>(1, left.count()))) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      *closed = true;
      break;
    }
    out.append(buf, size_t(n));
  }
  return out;
}

// Polls `done` for up to 10 s (the io threads update the table asynchronously).
bool Eventually(const std::function<bool()>& done) {
  for (int i = 0; i < 1000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return done();
}

class HttpServerTest : public ::testing::Test {
 protected:
  void Start(HttpServerOptions o) {
    o.port = 0;
    o.threads = 2;
    server_ = std::make_unique<HttpServer>(o, [](const HttpRequest&) { return HttpResponse{200, "{\"ok\":true}"}; });
    ASSERT_TRUE(server_->Start().ok());
  }
  void TearDown() override {
    if (server_) server_->Stop();
    for (int fd : fds_) ::close(fd);
  }
  int OpenKept() {
    const int fd = OpenLoopback(server_->port());
    EXPECT_GE(fd, 0);
    fds_.push_back(fd);
    return fd;
  }
  ConnectionStats Stats() const { return server_->Connections(); }

  std::unique_ptr<HttpServer> server_;
  std::vector<int> fds_;
};

constexpr char kHalfHeader[] = "GET /slow HTTP/1.1\r\nHost: localhost\r\nX-Trickle: ";

TEST_F(HttpServerTest, AtTheCapANewClientTakesTheSlotOfTheLongestIdleConnection) {
  HttpServerOptions o;
  o.max_connections = 4;
  Start(o);
  std::vector<int> idle;
  for (int i = 0; i < 4; ++i) {
    idle.push_back(OpenKept());
    ASSERT_TRUE(Eventually([&] { return Stats().open == uint64_t(i + 1); })) << i;  // the first is the oldest
  }
  const testing::HttpResult r = testing::Get(server_->port(), "/anything");
  EXPECT_EQ(r.status, 200) << r.body;
  bool closed = false;
  Receive(idle[0], 5s, &closed);
  EXPECT_TRUE(closed) << "the oldest idle connection made room";
  const ConnectionStats s = Stats();
  EXPECT_EQ(s.evicted, 1u);
  EXPECT_EQ(s.refused, 0u);
  EXPECT_LE(s.open, 4u);
  // The others are still served.
  Send(idle[3], "GET /again HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(Receive(idle[3], 2s, &closed).find("HTTP/1.1 200"), std::string::npos);
}

TEST_F(HttpServerTest, AtTheCapWithEveryConnectionBusyANewOneIsAnswered503AndClosedAtOnce) {
  HttpServerOptions o;
  o.max_connections = 2;
  o.header_timeout = 60s;
  Start(o);
  for (int i = 0; i < 2; ++i) Send(OpenKept(), kHalfHeader);
  ASSERT_TRUE(Eventually([&] { return Stats().busy == 2; }));
  const int late = OpenKept();
  Send(late, "GET /late HTTP/1.1\r\nHost: x\r\n\r\n");
  bool closed = false;
  const std::string answer = Receive(late, 5s, &closed);
  EXPECT_TRUE(closed);
  EXPECT_NE(answer.find("HTTP/1.1 503"), std::string::npos) << answer;
  EXPECT_NE(answer.find("Retry-After: 1"), std::string::npos) << answer;
  EXPECT_NE(answer.find("\"code\":\"too_many_connections\""), std::string::npos) << answer;
  EXPECT_TRUE(Eventually([&] { return Stats().refused == 1; }));
  EXPECT_EQ(Stats().evicted, 0u) << "a connection in the middle of a request is never evicted";
}

TEST_F(HttpServerTest, AnAddressAtItsOwnCapWithEveryConnectionBusyIsAnswered503UnlessExempt) {
  HttpServerOptions o;
  o.max_connections = 100;
  o.max_connections_per_peer = 1;
  o.header_timeout = 60s;
  Start(o);
  Send(OpenKept(), kHalfHeader);
  ASSERT_TRUE(Eventually([&] { return Stats().busy == 1; }));
  const int late = OpenKept();
  Send(late, "GET /late HTTP/1.1\r\nHost: x\r\n\r\n");
  bool closed = false;
  const std::string answer = Receive(late, 5s, &closed);
  EXPECT_TRUE(closed);
  EXPECT_NE(answer.find("HTTP/1.1 503"), std::string::npos) << answer;
  EXPECT_NE(answer.find("Retry-After: 1"), std::string::npos) << answer;
  EXPECT_NE(answer.find("this address holds its maximum of 1 connections"), std::string::npos) << answer;
  EXPECT_TRUE(Eventually([&] { return Stats().refused_per_peer == 1; }));
  EXPECT_EQ(Stats().refused, 0u);
  // The same address exempt (a trusted proxy): no cap of its own.
  server_->Stop();
  o.per_peer_exempt = [](const std::string& peer) { return peer == "127.0.0.1"; };
  Start(o);
  Send(OpenKept(), kHalfHeader);
  ASSERT_TRUE(Eventually([&] { return Stats().busy == 1; }));
  EXPECT_EQ(testing::Get(server_->port(), "/anything").status, 200);
}

TEST_F(HttpServerTest, AHeaderThatTricklesInIsCutOffAfterTheHeaderTimeoutWhileAnIdleKeepAliveStays) {
  HttpServerOptions o;
  o.header_timeout = 300ms;
  o.idle_timeout = 60s;
  Start(o);
  const int idle = OpenKept();
  const int slow = OpenKept();
  Send(slow, kHalfHeader);
  bool closed = false;
  Receive(slow, 10s, &closed);
  EXPECT_TRUE(closed) << "the trickling header holds its descriptor no longer than the header timeout";
  // The stream closes the socket as its timer fires, just before the handler counts it.
  EXPECT_TRUE(Eventually([&] { return Stats().header_timeouts == 1; }));
  Send(idle, "GET /still-here HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(Receive(idle, 2s, &closed).find("HTTP/1.1 200"), std::string::npos);
}

TEST_F(HttpServerTest, AConnectionWaitingLongerThanTheIdleTimeoutIsClosed) {
  HttpServerOptions o;
  o.idle_timeout = 200ms;
  Start(o);
  bool closed = false;
  Receive(OpenKept(), 10s, &closed);
  EXPECT_TRUE(closed);
  EXPECT_TRUE(Eventually([&] { return Stats().idle_timeouts == 1; }));
}

TEST_F(HttpServerTest, OutOfDescriptorsTheAcceptLoopClosesWhatWaitsAndServesAgainOnceThereAreSome) {
#if defined(__SANITIZE_ADDRESS__)
  // The sanitizers' runtime needs descriptors of its own (it tests memory
  // through a pipe): a process left none breaks the checker, not the server.
  GTEST_SKIP() << "the process is left no descriptor, which the sanitizer runtime needs for its own checks";
#endif
  Start(HttpServerOptions{});
  // Sockets made first (a connect needs none); then the process is left no
  // descriptor to accept them with.
  std::vector<int> waiting;
  for (int i = 0; i < 3; ++i) waiting.push_back(LoopbackSocket()), fds_.push_back(waiting.back());
  rlimit before{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &before), 0);
  int highest = 0;
  for (int fd = 0; fd < 65536 && fd < int(before.rlim_cur); ++fd)
    if (::fcntl(fd, F_GETFD) != -1) highest = fd;
  rlimit tight = before;
  tight.rlim_cur = rlim_t(highest + 1);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &tight), 0);
  std::vector<int> fillers;  // the free numbers below the limit, taken: the next open fails
  for (int f; (f = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) fillers.push_back(f);
  for (int fd : waiting) EXPECT_TRUE(ConnectLoopback(fd, server_->port()));  // completed by the kernel's backlog
  const bool errors_seen = Eventually([&] { return Stats().accept_errors > 0; });
  bool closed = false;
  Receive(waiting[0], 3s, &closed);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &before), 0);
  for (int f : fillers) ::close(f);
  EXPECT_TRUE(errors_seen);
  EXPECT_TRUE(closed) << "a client waiting while the process is out of descriptors hears at once, not never";
  EXPECT_TRUE(Eventually([&] { return Stats().refused >= 1; }));
  // A client that connects while the last drain runs is closed with the others
  // (it would retry); once descriptors are free the server accepts again.
  EXPECT_TRUE(Eventually([&] { return testing::Get(server_->port(), "/after").status == 200; }))
      << "accepting again once descriptors are free";
}

}  // namespace
}  // namespace affinity
