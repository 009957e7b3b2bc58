// A connection flood at systemd's default descriptor limit (1,024): idle and
// half-sent connections far past what the process could hold leave a new
// client's queries answering, and /admin/stats and /metrics count what the
// server did about them.
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>
#include <vector>

#include "testing/http_client.h"
#include "testing/process.h"
#include "testing/raw_socket.h"
#include "testing/temp_dir.h"

namespace affinity {
namespace {

using namespace affinity::testing;

uint64_t Field(const std::string& stats, const char* field) {
  simdjson::dom::parser parser;
  simdjson::dom::element e;
  uint64_t v = 0;
  if (parser.parse(stats).get(e) || e["connections"][field].get(v)) ADD_FAILURE() << field << " in " << stats;
  return v;
}

TEST(ConnectionFloodTest, AtA1024DescriptorLimit2000IdleAnd200HalfSentConnectionsLeaveANewClientsQueriesAnswering) {
  constexpr int kIdle = 2000, kHalfSent = 200;
  rlimit own{};
  ::getrlimit(RLIMIT_NOFILE, &own);
  if (own.rlim_max < rlim_t(kIdle + kHalfSent + 256))
    GTEST_SKIP() << "this test opens " << kIdle + kHalfSent << " connections; the descriptor hard limit is "
                 << own.rlim_max;
  rlimit raised{own.rlim_max, own.rlim_max};
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &raised), 0);

  TempDir dir;
  ServerProcess server(dir / "data", {}, true, /*descriptor_limit=*/1024);
  ASSERT_TRUE(server.running()) << server.log();
  const int port = server.port();
  const std::string query = R"({"viewer_id":"nobody","target":"items","k":10})";
  ASSERT_EQ(Post(port, "/affinity/query", query).status, 200);

  std::vector<int> flood;
  for (int i = 0; i < kIdle; ++i)
    if (int fd = OpenLoopback(port); fd >= 0) flood.push_back(fd);
  for (int i = 0; i < kHalfSent; ++i) {
    const int fd = OpenLoopback(port);
    if (fd < 0) continue;
    const std::string part = "POST /affinity/query HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nX-Slow: ";
    ::send(fd, part.data(), part.size(), MSG_NOSIGNAL);
    flood.push_back(fd);
  }
  int answered = 0;
  for (int i = 0; i < 50; ++i) answered += Post(port, "/affinity/query", query).status == 200 ? 1 : 0;
  EXPECT_EQ(answered, 50) << "a new client's queries answer through the flood";

  const HttpResult stats = Get(port, "/admin/stats");
  ASSERT_EQ(stats.status, 200) << stats.body;
  EXPECT_EQ(Field(stats.body, "max"), 512u) << "half of the 1,024 descriptors";
  EXPECT_LE(Field(stats.body, "open"), 512u);
  EXPECT_GE(Field(stats.body, "evicted_idle"), uint64_t(kIdle + kHalfSent - 512)) << stats.body;
  EXPECT_EQ(Field(stats.body, "accept_errors"), 0u) << "the process never ran out of descriptors";
  const HttpResult metrics = Get(port, "/metrics");
  EXPECT_NE(metrics.body.find("affinity_http_connections{field=\"evicted_idle\"}"), std::string::npos);
  for (int fd : flood) ::close(fd);
  ::setrlimit(RLIMIT_NOFILE, &own);
}

}  // namespace
}  // namespace affinity
