#include "api/http_server.h"

#include <cstdio>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <optional>
#include <thread>
#include <vector>

#include "base/json_writer.h"

namespace affinity {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, size_t max_body, const HttpHandler* handler)
      : stream_(std::move(socket)), max_body_(max_body), handler_(handler) {}

  void Start() { Read(); }

 private:
  void Read() {
    parser_.emplace();
    parser_->body_limit(max_body_);
    parser_->header_limit(64 * 1024);
    stream_.expires_after(std::chrono::seconds(60));
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
      Close();
      return;
    }
    if (ec == http::error::body_limit) {
      SendError(413, "payload_too_large", "request body exceeds " + std::to_string(max_body_) + " bytes");
      return;
    }
    if (ec) {
      SendError(400, "malformed_request", "malformed HTTP request: " + ec.message());
      return;
    }
    auto& req = parser_->get();
    HttpRequest r;
    r.method = std::string(req.method_string());
    std::string_view target(req.target().data(), req.target().size());
    auto q = target.find('?');
    r.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) r.query = std::string(target.substr(q + 1));
    r.body = std::move(req.body());
    for (const auto& field : req) {  // only the product's own headers (and Idempotency-Key) are kept
      const beast::string_view name = field.name_string();
      const bool own = name.size() > 11 && beast::iequals(name.substr(0, 11), "x-affinity-");
      if (!own && !beast::iequals(name, "idempotency-key")) continue;
      std::string lower(name);
      for (char& c : lower) c = char(std::tolower(static_cast<unsigned char>(c)));
      r.headers.emplace_back(std::move(lower), std::string(field.value().data(), field.value().size()));
    }
    HttpResponse resp;
    try {
      resp = (*handler_)(r);
    } catch (const std::exception& e) {
      resp = {500, JsonError("internal", e.what())};
    }
    // A HEAD is answered as its GET would be, with the GET's headers (its
    // Content-Length too) and no body.
    Send(resp.status, std::move(resp.body), resp.content_type, req.keep_alive(), resp.headers,
         req.method() == http::verb::head);
  }

  void SendError(int status, const std::string& code, const std::string& message) {
    Send(status, JsonError(code, message), "application/json", false);
  }

  void Send(int status, std::string body, const std::string& content_type, bool keep_alive,
            const std::vector<std::pair<std::string, std::string>>& headers = {}, bool head = false) {
    if (head) {
      auto res = std::make_shared<http::response<http::empty_body>>(http::status(status), 11);
      res->content_length(body.size());
      Write(std::move(res), content_type, keep_alive, headers);
      return;
    }
    auto res = std::make_shared<http::response<http::string_body>>(http::status(status), 11);
    res->body() = std::move(body);
    res->prepare_payload();
    Write(std::move(res), content_type, keep_alive, headers);
  }

  template <typename Response>
  void Write(std::shared_ptr<Response> res, const std::string& content_type, bool keep_alive,
             const std::vector<std::pair<std::string, std::string>>& headers) {
    res->set(http::field::server, "affinity");
    res->set(http::field::content_type, content_type);
    for (const auto& [name, value] : headers) res->set(name, value);
    res->keep_alive(keep_alive);
    http::async_write(stream_, *res, [self = shared_from_this(), res, keep_alive](beast::error_code ec, size_t) {
      if (ec || !keep_alive) {
        self->Close();
        return;
      }
      self->Read();
    });
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  size_t max_body_;
  const HttpHandler* handler_;
};

}  // namespace

struct HttpServer::Impl {
  std::string host;
  int port;
  int threads;
  size_t max_body;
  HttpHandler handler;
  asio::io_context ioc;
  std::optional<tcp::acceptor> acceptor;
  std::vector<std::thread> pool;
  int bound_port = 0;

  std::optional<asio::steady_timer> backoff;
  uint64_t accept_errors = 0;  // on the acceptor's strand only

  void Accept() {
    acceptor->async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        socket.set_option(tcp::no_delay(true), ec);
        std::make_shared<Session>(std::move(socket), max_body, &handler)->Start();
        Accept();
        return;
      }
      // Out of descriptors (or another accept error): retrying at once spins a
      // core while nothing frees one; wait a little, then accept again.
      if (++accept_errors == 1 || accept_errors % 100 == 0)
        std::fprintf(stderr, "affinity: accept failed (%s), %llu times so far: backing off 100 ms\n",
                     ec.message().c_str(), (unsigned long long)accept_errors);
      backoff->expires_after(std::chrono::milliseconds(100));
      backoff->async_wait([this](beast::error_code wait_ec) {
        if (wait_ec != asio::error::operation_aborted) Accept();
      });
    });
  }
};

HttpServer::HttpServer(std::string host, int port, int threads, size_t max_body_bytes, HttpHandler handler)
    : impl_(std::make_unique<Impl>()) {
  impl_->host = std::move(host);
  impl_->port = port;
  impl_->threads = threads > 0 ? threads : int(std::max(1u, std::thread::hardware_concurrency()));
  impl_->max_body = max_body_bytes;
  impl_->handler = std::move(handler);
}

HttpServer::~HttpServer() { Stop(); }

absl::Status HttpServer::Start() {
  beast::error_code ec;
  auto addr = asio::ip::make_address(impl_->host, ec);
  if (ec) return absl::InvalidArgumentError("bad listen address '" + impl_->host + "'");
  tcp::endpoint ep(addr, uint16_t(impl_->port));
  impl_->acceptor.emplace(impl_->ioc);
  impl_->acceptor->open(ep.protocol(), ec);
  if (!ec) impl_->acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor->bind(ep, ec);
  if (!ec) impl_->acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return absl::UnavailableError("cannot listen on " + impl_->host + ":" + std::to_string(impl_->port) + ": " +
                                  ec.message());
  impl_->bound_port = impl_->acceptor->local_endpoint().port();
  impl_->backoff.emplace(impl_->ioc);
  impl_->Accept();
  for (int i = 0; i < impl_->threads; ++i) impl_->pool.emplace_back([this] { impl_->ioc.run(); });
  return absl::OkStatus();
}

void HttpServer::Stop() {
  if (!impl_ || impl_->pool.empty()) return;
  asio::post(impl_->ioc, [this] {
    beast::error_code ec;
    impl_->acceptor->close(ec);
    if (impl_->backoff) impl_->backoff->cancel();
  });
  impl_->ioc.stop();
  for (auto& t : impl_->pool) t.join();
  impl_->pool.clear();
}

int HttpServer::port() const { return impl_->bound_port; }

}  // namespace affinity
