// A blocking HTTP/1.1 client for end-to-end tests (Boost.Beast), one connection
// per request.
#pragma once

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <string>
#include <utility>
#include <vector>

namespace affinity::testing {

struct HttpResult {
  int status = 0;
  std::string body;
  std::string headers;  // "Name: value" lines

  // The value of header `name` (case as the server sends it), or "".
  std::string Header(const std::string& name) const {
    const std::string key = name + ": ";
    auto pos = headers.find(key);
    if (pos == std::string::npos) return "";
    auto end = headers.find('\n', pos);
    return headers.substr(pos + key.size(), end - pos - key.size());
  }
};

inline HttpResult HttpCall(int port, const std::string& method, const std::string& target,
                           const std::string& body = "",
                           const std::vector<std::pair<std::string, std::string>>& extra_headers = {}) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::resolver resolver(ioc);
  beast::tcp_stream stream(ioc);
  beast::error_code ec;
  stream.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), uint16_t(port)), ec);
  if (ec) return {-1, ec.message(), ""};
  http::request<http::string_body> req(http::string_to_verb(method), target, 11);
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::content_type, "application/json");
  for (const auto& [name, value] : extra_headers) req.set(name, value);
  req.body() = body;
  req.prepare_payload();
  http::write(stream, req, ec);
  // A server may answer (413) and close before reading the whole body: read
  // its response even when the write was cut short.
  beast::error_code write_ec = ec;
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(1 << 30);
  http::read(stream, buffer, parser, ec);
  if (ec) return {-1, (write_ec ? write_ec : ec).message(), ""};
  stream.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
  std::string headers;
  for (const auto& field : parser.get())
    headers += std::string(field.name_string()) + ": " + std::string(field.value()) + "\n";
  return {int(parser.get().result_int()), parser.get().body(), headers};
}

inline HttpResult Post(int port, const std::string& target, const std::string& body) {
  return HttpCall(port, "POST", target, body);
}
inline HttpResult Get(int port, const std::string& target) { return HttpCall(port, "GET", target); }

}  // namespace affinity::testing
