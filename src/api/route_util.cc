#include "api/route_util.h"

#include <algorithm>

#include "base/json_writer.h"
#include "base/status.h"
#include "base/strings.h"
#include "state/registry.h"

namespace affinity {

HttpResponse ErrorResponse(int status, std::string_view code, std::string_view message) {
  return {status, JsonError(code, message)};
}

HttpResponse FromStatus(const absl::Status& s) {
  const std::string message(s.message());  // absl's string_view is not std's in this Abseil
  if (IsStorageError(s)) {  // retried once space is back (the floor is polled every second)
    HttpResponse r = ErrorResponse(507, "insufficient_storage", message);
    r.headers.emplace_back("Retry-After", "5");
    return r;
  }
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange: return ErrorResponse(422, "invalid", message);
    case absl::StatusCode::kUnauthenticated: return ErrorResponse(401, "unauthorized", message);
    case absl::StatusCode::kPermissionDenied: return ErrorResponse(403, "forbidden", message);
    case absl::StatusCode::kNotFound: return ErrorResponse(404, "not_found", message);
    case absl::StatusCode::kAlreadyExists: return ErrorResponse(409, "conflict", message);
    case absl::StatusCode::kResourceExhausted: return ErrorResponse(429, "overloaded", message);
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kFailedPrecondition: return ErrorResponse(503, "unavailable", message);
    // What is left is a fault of the server's own (a store's DataLoss or
    // Internal, a broken invariant), never of the request.
    default: return ErrorResponse(500, "internal", message);
  }
}

std::string UrlDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  auto hex = [](char c) {
    return c >= '0' && c <= '9' ? c - '0' : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : -1;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out.push_back(char(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::optional<HttpResponse> QueryParams(const std::string& query, std::initializer_list<std::string_view> known,
                                        std::map<std::string, std::string>* out) {
  return QueryParams(query, std::vector<std::string>(known.begin(), known.end()), out);
}

std::optional<HttpResponse> QueryParams(const std::string& query, const std::vector<std::string>& known,
                                        std::map<std::string, std::string>* out) {
  for (std::string_view param : Split(query, '&')) {
    if (param.empty()) continue;
    const size_t eq = param.find('=');
    const std::string key = UrlDecode(param.substr(0, eq));
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      std::string names;
      for (const std::string& k : known) names += (names.empty() ? "" : ", ") + k;
      return ErrorResponse(422, "invalid", "unknown query parameter '" + key + "'; known: " + names);
    }
    if (out->count(key)) return ErrorResponse(422, "invalid", "query parameter '" + key + "' is given twice");
    (*out)[key] = UrlDecode(eq == std::string_view::npos ? std::string_view() : param.substr(eq + 1));
  }
  return std::nullopt;
}

std::optional<HttpResponse> BadId(std::string_view id, std::string_view field) {
  const absl::Status s = CheckExternalId(id, field);
  if (s.ok()) return std::nullopt;
  return ErrorResponse(422, "invalid", std::string(s.message()));
}

std::string ClientAddress(const HttpRequest& req, const TrustedProxies& trusted) {
  std::string forwarded;  // every X-Forwarded-For header, in order, as one list
  for (const auto& [name, value] : req.headers)
    if (name == "x-forwarded-for") forwarded += (forwarded.empty() ? "" : ",") + value;
  return ClientAddress(req.peer, forwarded, trusted);
}

}  // namespace affinity
