#include "api/http_server.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/ssl.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <optional>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "api/http_session.h"

namespace affinity {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

using http_internal::PlainStream;
using http_internal::Session;
using http_internal::SessionBase;
using http_internal::TlsStream;

struct HttpServer::Impl {
  HttpServerOptions options;
  HttpHandler handler;
  std::unique_ptr<ConnectionTable> table;  // before ioc: sessions left in it leave the table as it is destroyed
  std::optional<asio::ssl::context> tls;   // with tls_cert and tls_key: every connection speaks TLS (before ioc too)
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
        std::shared_ptr<SessionBase> session = MakeSession(std::move(socket));
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

  std::shared_ptr<SessionBase> MakeSession(tcp::socket socket) {
    if (tls) return std::make_shared<Session<TlsStream>>(&options, &handler, table.get(), std::move(socket), *tls);
    return std::make_shared<Session<PlainStream>>(&options, &handler, table.get(), std::move(socket));
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

namespace {

// OpenSSL's reason for the last failure ("key values mismatch"), or `fallback`.
std::string SslReason(const std::string& fallback) {
  const unsigned long e = ERR_peek_last_error();
  ERR_clear_error();
  const char* reason = e ? ERR_reason_error_string(e) : nullptr;
  return reason ? reason : fallback;
}

// The server's TLS context: TLS 1.2 at least, the certificate chain and the
// private key from PEM files, which must belong together.
absl::StatusOr<asio::ssl::context> LoadTls(const std::string& cert, const std::string& key) {
  asio::ssl::context ctx(asio::ssl::context::tls_server);
  ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                  asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1 |
                  asio::ssl::context::single_dh_use);
  SSL_CTX* native = ctx.native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(native, cert.c_str()) != 1)
    return absl::InvalidArgumentError("server.tls_cert: cannot use '" + cert + "' as a PEM certificate (" +
                                      SslReason("unreadable") + ")");
  const bool key_used = SSL_CTX_use_PrivateKey_file(native, key.c_str(), SSL_FILETYPE_PEM) == 1;
  if (!key_used && ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH)
    return absl::InvalidArgumentError("server.tls_key: cannot use '" + key + "' as a PEM private key (" +
                                      SslReason("unreadable") + ")");
  if (!key_used || SSL_CTX_check_private_key(native) != 1)
    return absl::InvalidArgumentError("server.tls_key '" + key + "' is not the private key of server.tls_cert '" +
                                      cert + "' (" + SslReason("key values mismatch") + ")");
  return ctx;
}

}  // namespace

absl::Status HttpServer::Start() {
  beast::error_code ec;
  const HttpServerOptions& o = impl_->options;
  if (o.tls()) {
    auto tls = LoadTls(o.tls_cert, o.tls_key);
    if (!tls.ok()) return tls.status();
    impl_->tls.emplace(*std::move(tls));
  }
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
