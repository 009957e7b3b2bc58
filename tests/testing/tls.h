// TLS for tests: a self-signed certificate made at test time with OpenSSL's
// API (an EC P-256 key, an X509 certificate for 127.0.0.1 and localhost; no
// `openssl` binary needed), and a blocking HTTPS client (Boost.Beast over
// boost::asio::ssl) that trusts only the certificate it is given.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "testing/http_client.h"

namespace affinity::testing {

struct PemPair {
  std::string cert;  // PEM certificate
  std::string key;   // PEM private key (PKCS#8)
};

// A fresh self-signed certificate for `common_name`, valid for a day, with
// 127.0.0.1 and localhost as its subject alternative names. Empty on failure.
inline PemPair MakeSelfSignedCertificate(const std::string& common_name = "127.0.0.1") {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> x509(X509_new(), X509_free);
  if (!key || !x509) return {};
  X509_set_version(x509.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x509.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(x509.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(x509.get()), 24 * 3600);
  X509_set_pubkey(x509.get(), key.get());
  X509_NAME* name = X509_get_subject_name(x509.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(common_name.c_str()),
                             -1, -1, 0);
  X509_set_issuer_name(x509.get(), name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x509.get(), x509.get(), nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost"},
                            std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (!ext) return {};
    X509_add_ext(x509.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(x509.get(), key.get(), EVP_sha256()) == 0) return {};
  auto pem = [](auto write) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    write(bio.get());
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, size_t(n));
  };
  PemPair out;
  out.cert = pem([&](BIO* b) { PEM_write_bio_X509(b, x509.get()); });
  out.key = pem([&](BIO* b) { PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr); });
  return out;
}

inline void WriteText(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// One request over HTTPS to 127.0.0.1:port, trusting only `ca_pem` (the
// server's certificate must verify for 127.0.0.1). status -1 and the error in
// the body when the connection, the handshake or the exchange failed.
inline HttpResult HttpsCall(int port, const std::string& ca_pem, const std::string& method, const std::string& target,
                            const std::string& body = "",
                            const std::vector<std::pair<std::string, std::string>>& extra_headers = {}) {
  namespace asio = boost::asio;
  namespace beast = boost::beast;
  namespace http = beast::http;
  asio::io_context ioc;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  beast::error_code ec;
  ctx.add_certificate_authority(asio::buffer(ca_pem), ec);
  if (ec) return {-1, "bad CA: " + ec.message(), ""};
  ctx.set_verify_mode(asio::ssl::verify_peer);
  beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
  stream.set_verify_callback(asio::ssl::host_name_verification("127.0.0.1"));
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(30));
  beast::get_lowest_layer(stream).connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), uint16_t(port)),
                                          ec);
  if (ec) return {-1, ec.message(), ""};
  stream.handshake(asio::ssl::stream_base::client, ec);
  if (ec) return {-1, "handshake: " + ec.message(), ""};
  http::request<http::string_body> req(http::string_to_verb(method), target, 11);
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::content_type, "application/json");
  for (const auto& [name, value] : extra_headers) req.set(name, value);
  req.body() = body;
  req.prepare_payload();
  http::write(stream, req, ec);
  if (ec) return {-1, ec.message(), ""};
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(1 << 30);
  http::read(stream, buffer, parser, ec);
  if (ec) return {-1, ec.message(), ""};
  stream.shutdown(ec);  // close_notify; the server's answer to it may be cut short
  std::string headers;
  for (const auto& field : parser.get())
    headers += std::string(field.name_string()) + ": " + std::string(field.value()) + "\n";
  return {int(parser.get().result_int()), parser.get().body(), headers};
}

}  // namespace affinity::testing
