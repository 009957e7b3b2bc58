// One HTTP connection of the server (api/http_server.h), over a plain TCP
// stream or over TLS (beast::ssl_stream, OpenSSL): it waits for a request
// (idle_timeout), reads its header (header_timeout from its first byte) and
// body (body_timeout), hands it to the handler and writes the answer, keeping
// the connection alive when the client asks. Over TLS the handshake comes
// first and counts against header_timeout: a client that never completes one
// holds its descriptor no longer than a trickled header would.
// Internal to api/ (http_server.cc makes them).
#pragma once

#include <array>
#include <cctype>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "api/connection_table.h"
#include "api/http_server.h"
#include "base/json_writer.h"

namespace affinity::http_internal {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// What the acceptor needs of a session of either stream.
class SessionBase : public Connection {
 public:
  virtual void Start(uint64_t id) = 0;  // admitted: serve it
  virtual void Refuse(bool per_peer = false) = 0;  // not admitted: answer 503 (plain HTTP) and close
  virtual const std::string& peer() const = 0;
};

template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

 public:
  template <class... StreamArgs>
  Session(const HttpServerOptions* options, const HttpHandler* handler, ConnectionTable* table, tcp::socket socket,
          StreamArgs&... stream_args)
      : stream_(std::move(socket), stream_args...), options_(options), handler_(handler), table_(table) {
    beast::error_code ec;
    const tcp::endpoint remote = Socket().remote_endpoint(ec);
    if (!ec) peer_ = remote.address().to_string();
  }

  const std::string& peer() const override { return peer_; }
  ~Session() override {
    if (id_) table_->Remove(id_);
  }

  void Start(uint64_t id) override {
    id_ = id;
    if constexpr (kTls) {
      Lowest().expires_after(options_->header_timeout);
      stream_.async_handshake(asio::ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
        if (ec) {  // a client that does not speak TLS, or too slowly
          if (ec == beast::error::timeout) self->table_->CountHeaderTimeout();
          self->Lowest().close();
          return;
        }
        self->Wait();
      });
    } else {
      Wait();
    }
  }

  void Evict() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] { self->Lowest().close(); });
  }

  // Answers 503 at once and closes: the server holds all the connections it
  // may and every one is busy. Nothing is queued behind the refusal. (Over
  // TLS there is no session to answer in: the connection is closed.)
  void Refuse(bool per_peer = false) override {
    beast::error_code ec;
    tcp::socket& s = Socket();
    s.non_blocking(true, ec);
    char sink[4096];
    s.read_some(asio::buffer(sink), ec);  // what already arrived, so that close sends FIN, not RST
    if constexpr (!kTls) {
      const std::string body = JsonError(
          "too_many_connections",
          per_peer ? "this address holds its maximum of " + std::to_string(options_->max_connections_per_peer) +
                         " connections and every one is busy; retry shortly"
                   : "the server holds its maximum of " + std::to_string(options_->max_connections) +
                         " connections and every one is busy; retry shortly");
      const std::string head = "HTTP/1.1 503 Service Unavailable\r\nServer: affinity\r\nContent-Type: application/json\r\n"
                               "Retry-After: 1\r\nConnection: close\r\nContent-Length: " +
                               std::to_string(body.size()) + "\r\n\r\n";
      s.write_some(std::array<asio::const_buffer, 2>{asio::buffer(head), asio::buffer(body)}, ec);
    }
    s.shutdown(tcp::socket::shutdown_send, ec);
    s.close(ec);
  }

 private:
  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }
  tcp::socket& Socket() { return Lowest().socket(); }

  // Waits for a request's first byte (idle_timeout), unless one is buffered.
  void Wait() {
    if (buffer_.size() > 0) {
      ReadHeader();
      return;
    }
    table_->SetWaiting(id_, true, served_);
    Lowest().expires_after(options_->idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096), [self = this->shared_from_this()](beast::error_code ec, size_t n) {
      if (ec) {
        if (ec == beast::error::timeout) self->table_->CountIdleTimeout();
        self->Close();
        return;
      }
      self->buffer_.commit(n);
      self->table_->SetWaiting(self->id_, false, self->served_);
      self->ReadHeader();
    });
  }

  // The header must be complete within header_timeout of its first byte: a
  // client trickling one (slowloris) holds a descriptor no longer than that.
  void ReadHeader() {
    parser_.emplace();
    parser_->body_limit(options_->max_body_bytes);
    parser_->header_limit(64 * 1024);
    Lowest().expires_after(options_->header_timeout);
    http::async_read_header(stream_, buffer_, *parser_, [self = this->shared_from_this()](beast::error_code ec, size_t) {
      if (ec == beast::error::timeout) {
        self->table_->CountHeaderTimeout();
        self->Close();
        return;
      }
      if (ec || self->parser_->is_done()) {
        self->OnRead(ec);
        return;
      }
      self->Lowest().expires_after(self->options_->body_timeout);
      http::async_read(self->stream_, self->buffer_, *self->parser_,
                       [self](beast::error_code body_ec, size_t) { self->OnRead(body_ec); });
    });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
        ec == asio::ssl::error::stream_truncated) {
      Close();
      return;
    }
    if (ec == http::error::body_limit) {
      SendError(413, "payload_too_large", "request body exceeds " + std::to_string(options_->max_body_bytes) + " bytes");
      return;
    }
    if (ec) {
      SendError(400, "malformed_request", "malformed HTTP request: " + ec.message());
      return;
    }
    auto& req = parser_->get();
    HttpRequest r = ToRequest(req);
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

  HttpRequest ToRequest(http::request<http::string_body>& req) {
    HttpRequest r;
    r.method = std::string(req.method_string());
    std::string_view target(req.target().data(), req.target().size());
    auto q = target.find('?');
    r.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) r.query = std::string(target.substr(q + 1));
    r.body = std::move(req.body());
    r.peer = peer_;
    for (const auto& field : req) {  // only the product's own headers, Idempotency-Key, Authorization and X-Forwarded-For
      const beast::string_view name = field.name_string();
      const bool own = name.size() > 11 && beast::iequals(name.substr(0, 11), "x-affinity-");
      if (!own && !beast::iequals(name, "idempotency-key") && field.name() != http::field::authorization &&
          !beast::iequals(name, "x-forwarded-for"))
        continue;
      std::string lower(name);
      for (char& c : lower) c = char(std::tolower(static_cast<unsigned char>(c)));
      r.headers.emplace_back(std::move(lower), std::string(field.value().data(), field.value().size()));
    }
    return r;
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
    for (const auto& [name, value] : headers) res->insert(name, value);  // a name may repeat (WWW-Authenticate)
    res->keep_alive(keep_alive);
    http::async_write(stream_, *res, [self = this->shared_from_this(), res, keep_alive](beast::error_code ec, size_t) {
      if (ec || !keep_alive) {
        self->Close();
        return;
      }
      self->served_ = true;
      self->Wait();
    });
  }

  // Plain: half-closes (the client reads to the end, then both sides close).
  // TLS: sends close_notify (within header_timeout), then closes.
  void Close() {
    if constexpr (kTls) {
      Lowest().expires_after(options_->header_timeout);
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) { self->Lowest().close(); });
    } else {
      beast::error_code ec;
      Socket().shutdown(tcp::socket::shutdown_send, ec);
    }
  }

  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  const HttpServerOptions* options_;
  const HttpHandler* handler_;
  ConnectionTable* table_;
  std::string peer_;     // the remote address, "" when the socket could not tell
  uint64_t id_ = 0;      // 0 until admitted
  bool served_ = false;  // answered a request before
};

}  // namespace affinity::http_internal
