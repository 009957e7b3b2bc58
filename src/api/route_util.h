// What the API's route handlers share: the error body and status of a
// refusal, the mapping of a Status to one, and the decoding of paths and URL
// query parameters.
// Thread safety: pure functions.
#pragma once

#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "access/trusted_proxies.h"
#include "api/http_server.h"

namespace affinity {

// {"error":{"code","message"}} with `status`.
HttpResponse ErrorResponse(int status, std::string_view code, std::string_view message);
// A storage fault 507; InvalidArgument and OutOfRange 422, Unauthenticated
// 401, PermissionDenied 403, NotFound 404, AlreadyExists 409,
// ResourceExhausted 429, Unavailable and FailedPrecondition 503; a 500 only for
// what is left, the server's own faults (the store's DataLoss and Internal).
HttpResponse FromStatus(const absl::Status& s);

// Decodes %XX escapes in a path segment (ids may hold any byte).
std::string UrlDecode(std::string_view s);

// A URL query's parameters (URL-decoded) into *out; a 422 naming the first
// parameter not in `known`, or one given twice.
std::optional<HttpResponse> QueryParams(const std::string& query, std::initializer_list<std::string_view> known,
                                        std::map<std::string, std::string>* out);
std::optional<HttpResponse> QueryParams(const std::string& query, const std::vector<std::string>& known,
                                        std::map<std::string, std::string>* out);

// A 422 naming `field` unless `id` is a valid external id (state/registry.h).
std::optional<HttpResponse> BadId(std::string_view id, std::string_view field);

// The client who sent `req` (access/trusted_proxies.h): its X-Forwarded-For
// believed only from a trusted proxy, else the socket's peer. For log lines
// and audit records that name who asked.
std::string ClientAddress(const HttpRequest& req, const TrustedProxies& trusted);

}  // namespace affinity
