// A small HTTP/1.1 server on Boost.Beast: keep-alive, a body size limit (413),
// malformed requests answered with a JSON 400, handlers run on a pool of
// io threads. Handlers must be thread-safe. Connections are a budget
// (api/connection_table.h): at most max_connections are held, idle ones make
// room for new ones, one peer holds at most max_connections_per_peer, a
// header that trickles in is cut off after
// header_timeout, and accept errors (out of descriptors) back off instead of
// spinning. With tls_cert and tls_key it serves HTTPS (OpenSSL, through
// boost::asio::ssl; api/http_session.h). A HEAD request reaches the handler
// as it came (method "HEAD"); its answer is sent with its headers and
// Content-Length but without its body.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "api/connection_table.h"

namespace affinity {

struct HttpRequest {
  std::string method;
  std::string path;   // without the query string
  std::string query;  // after '?', may be empty
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // X-Affinity-*, Idempotency-Key, Authorization, X-Forwarded-For (names lower-case)
  std::string peer;  // the connection's remote address ("127.0.0.1", "::1"), as the socket saw it
  std::string key_name;  // the name of the API key the access step accepted ("" before it, or without keys)

  // The value of header `name` (lower-case), or "" when absent.
  std::string_view Header(std::string_view name) const {
    for (const auto& [k, v] : headers)
      if (k == name) return v;
    return {};
  }
};

struct HttpResponse {
  HttpResponse() = default;
  HttpResponse(int status_code, std::string body_text, std::string type = "application/json")
      : status(status_code), body(std::move(body_text)), content_type(std::move(type)) {}
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers (Allow, Retry-After)
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;                       // 0 picks a free one
  int threads = 0;                    // io threads; 0 = number of cores
  size_t max_body_bytes = 8 << 20;    // larger bodies get 413
  uint64_t max_connections = 512;     // connections held at once (see connection_table.h)
  uint64_t max_connections_per_peer = 0;  // ... by one remote address (0: no per-peer cap)
  std::function<bool(const std::string& peer)> per_peer_exempt;  // peers without a cap of their own (null: none)
  std::chrono::milliseconds header_timeout{10000};  // from a request's first byte to its header's end
  std::chrono::milliseconds idle_timeout{60000};    // a connection waiting for a request
  std::chrono::milliseconds body_timeout{60000};    // from a header's end to its body's end
  // PEM files: with both, every connection speaks TLS (1.2 at least; the
  // handshake must end within header_timeout). Start fails naming the file
  // when one is unreadable or the key is not the certificate's.
  std::string tls_cert;
  std::string tls_key;
  bool tls() const { return !tls_cert.empty(); }
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, HttpHandler handler);
  ~HttpServer();
  absl::Status Start();  // loads the TLS certificate and key (when set), binds and starts the io threads
  void Stop();
  int port() const;      // the bound port (useful with port 0)
  ConnectionStats Connections() const;  // thread-safe
  const HttpServerOptions& options() const;  // as started (the limits /metrics reports)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace affinity
