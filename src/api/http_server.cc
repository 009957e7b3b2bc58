#include "api/http_server.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
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

class Session : public Connection, public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const HttpServerOptions* options, const HttpHandler* handler, ConnectionTable* table)
      : stream_(std::move(socket)), options_(options), handler_(handler), table_(table) {
    beast::error_code ec;
    const tcp::endpoint remote = stream_.socket().remote_endpoint(ec);
    if (!ec) peer_ = remote.address().to_string();
  }

  const std::string& peer() const { return peer_; }
  ~Session() override {
    if (id_) table_->Remove(id_);
  }

  void Start(uint64_t id) {
    id_ = id;
    Wait();
  }

  void Evict() override {
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->stream_.close(); });
  }

  // Answers 503 at once and closes: the server holds all the connections it
  // may and every one is busy. Nothing is queued behind the refusal.
  void Refuse(bool per_peer = false) {
    beast::error_code ec;
    tcp::socket& s = stream_.socket();
    s.non_blocking(true, ec);
    char sink[4096];
    s.read_some(asio::buffer(sink), ec);  // what already arrived, so that close sends FIN, not RST
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
    s.shutdown(tcp::socket::shutdown_send, ec);
    s.close(ec);
  }

 private:
  // Waits for a request's first byte (idle_timeout), unless one is buffered.
  void Wait() {
    if (buffer_.size() > 0) {
      ReadHeader();
      return;
    }
    table_->SetWaiting(id_, true, served_);
    stream_.expires_after(options_->idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](beast::error_code ec, size_t n) {
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
    stream_.expires_after(options_->header_timeout);
    http::async_read_header(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec == beast::error::timeout) {
        self->table_->CountHeaderTimeout();
        self->Close();
        return;
      }
      if (ec || self->parser_->is_done()) {
        self->OnRead(ec);
        return;
      }
      self->stream_.expires_after(self->options_->body_timeout);
      http::async_read(self->stream_, self->buffer_, *self->parser_,
                       [self](beast::error_code body_ec, size_t) { self->OnRead(body_ec); });
    });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
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
    for (const auto& [name, value] : headers) res->insert(name, value);  // a name may repeat (WWW-Authenticate)
    res->keep_alive(keep_alive);
    http::async_write(stream_, *res, [self = shared_from_this(), res, keep_alive](beast::error_code ec, size_t) {
      if (ec || !keep_alive) {
        self->Close();
        return;
      }
      self->served_ = true;
      self->Wait();
    });
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  const HttpServerOptions* options_;
  const HttpHandler* handler_;
  ConnectionTable* table_;
  std::string peer_;     // the remote address, "" when the socket could not tell
  uint64_t id_ = 0;      // 0 until admitted
  bool served_ = false;  // answered a request before
};

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  HttpHandler handler;
  std::unique_ptr<ConnectionTable> table;  // before ioc: sessions left in it leave the table as it is destroyed
  asio::io_context ioc;
  std::optional<tcp::acceptor> acceptor;
  std::vector<std::thread> pool;
  int bound_port = 0;

  std::optional<asio::steady_timer> backoff;
  int reserve_fd = -1;  // a spare descriptor, given up to close what waits when the process is out of them

  void Accept() {
    acceptor->async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        socket.set_option(tcp::no_delay(true), ec);
        auto session = std::make_shared<Session>(std::move(socket), &options, &handler, table.get());
        const bool exempt = options.per_peer_exempt && options.per_peer_exempt(session->peer());
        ConnectionTable::Refusal why = ConnectionTable::Refusal::kNone;
        if (std::optional<uint64_t> id = table->Admit(session, exempt ? std::string() : session->peer(), &why))
          session->Start(*id);
        else
          session->Refuse(why == ConnectionTable::Refusal::kPerPeer);
        Accept();
        return;
      }
      // Out of descriptors (or another accept error): retrying at once spins a
      // core while nothing frees one. Close what waits in the backlog (with the
      // reserve descriptor, so that those clients hear at once instead of
      // hanging), then wait a little and accept again.
      const uint64_t errors = table->CountAcceptError();
      if (errors == 1 || errors % 100 == 0)
        std::fprintf(stderr, "affinity: accept failed (%s), %llu times so far: backing off 100 ms\n",
                     ec.message().c_str(), (unsigned long long)errors);
      if (ec == asio::error::no_descriptors || ec.value() == ENFILE) DrainBacklog();
      backoff->expires_after(std::chrono::milliseconds(100));
      backoff->async_wait([this](beast::error_code wait_ec) {
        if (wait_ec != asio::error::operation_aborted) Accept();
      });
    });
  }

  void DrainBacklog() {
    if (reserve_fd < 0) return;
    ::close(reserve_fd);
    for (int i = 0; i < 64; ++i) {
      const int fd = ::accept4(acceptor->native_handle(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) break;
      table->CountRefused();
      ::close(fd);
    }
    reserve_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  }
};

HttpServer::HttpServer(HttpServerOptions options, HttpHandler handler) : impl_(std::make_unique<Impl>()) {
  if (options.threads <= 0) options.threads = int(std::max(1u, std::thread::hardware_concurrency()));
  impl_->options = std::move(options);
  impl_->handler = std::move(handler);
  impl_->table = std::make_unique<ConnectionTable>(impl_->options.max_connections,
                                                   impl_->options.max_connections_per_peer);
}

HttpServer::~HttpServer() { Stop(); }

absl::Status HttpServer::Start() {
  beast::error_code ec;
  const HttpServerOptions& o = impl_->options;
  auto addr = asio::ip::make_address(o.host, ec);
  if (ec) return absl::InvalidArgumentError("bad listen address '" + o.host + "'");
  tcp::endpoint ep(addr, uint16_t(o.port));
  impl_->acceptor.emplace(impl_->ioc);
  impl_->acceptor->open(ep.protocol(), ec);
  if (!ec) impl_->acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor->bind(ep, ec);
  if (!ec) impl_->acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return absl::UnavailableError("cannot listen on " + o.host + ":" + std::to_string(o.port) + ": " + ec.message());
  impl_->bound_port = impl_->acceptor->local_endpoint().port();
  impl_->backoff.emplace(impl_->ioc);
  impl_->reserve_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  impl_->Accept();
  for (int i = 0; i < o.threads; ++i) impl_->pool.emplace_back([this] { impl_->ioc.run(); });
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
  if (impl_->reserve_fd >= 0) ::close(impl_->reserve_fd);
  impl_->reserve_fd = -1;
}

int HttpServer::port() const { return impl_->bound_port; }

ConnectionStats HttpServer::Connections() const { return impl_->table->Stats(); }

const HttpServerOptions& HttpServer::options() const { return impl_->options; }

}  // namespace affinity
