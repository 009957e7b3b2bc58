// A small HTTP/1.1 server on Boost.Beast: keep-alive, a body size limit (413),
// malformed requests answered with a JSON 400, handlers run on a pool of
// io threads. Handlers must be thread-safe. A HEAD request reaches the handler
// as it came (method "HEAD"); its answer is sent with its headers and
// Content-Length but without its body.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace affinity {

struct HttpRequest {
  std::string method;
  std::string path;   // without the query string
  std::string query;  // after '?', may be empty
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // X-Affinity-* and Idempotency-Key (names lower-case)

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

class HttpServer {
 public:
  HttpServer(std::string host, int port, int threads, size_t max_body_bytes, HttpHandler handler);
  ~HttpServer();
  absl::Status Start();  // binds and starts the io threads
  void Stop();
  int port() const;      // the bound port (useful with port 0)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace affinity
