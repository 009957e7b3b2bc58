// The API's routes as a table: method, path pattern, the name /metrics counts
// it under, the scope a caller needs, whether it writes (admitted by the
// storage guard first), and the handler. The router dispatches from it, the
// access control reads each route's scope from it, and a test enumerates it.
// A pattern's segments are literals or path parameters: `{name}` (one
// non-empty segment) or at most one `{name*}` (one or more segments, the rest
// of the path up to the literals after it); parameters arrive URL-decoded. The first pattern that matches a
// path decides it: its entries answer their methods, any other method gets a
// 405 naming them in Allow.
// Thread safety: Find and entries are safe for concurrent use once built.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "api/http_server.h"
#include "base/component.h"

namespace affinity {

using PathArgs = std::map<std::string, std::string>;

struct RouteEntry {
  std::string method;
  std::string pattern;
  std::string name;
  Scope scope = Scope::kAdmin;
  bool writes = false;
  std::function<HttpResponse(const HttpRequest&, const PathArgs&)> handle;
};

// True when `path` matches `pattern`, with its path parameters in *args.
bool MatchPattern(std::string_view pattern, std::string_view path, PathArgs* args);

class RouteTable {
 public:
  // InvalidArgument for a malformed pattern or a method and pattern already there.
  absl::Status Add(RouteEntry entry);

  struct Match {
    const RouteEntry* entry = nullptr;  // null: no entry of this method
    PathArgs args;
    std::string name;   // the matched pattern's route name ("" when no pattern matched)
    std::string allow;  // its methods, for a 405 ("GET, PATCH, DELETE")
  };
  Match Find(std::string_view method, std::string_view path) const;
  const std::vector<RouteEntry>& entries() const { return entries_; }

 private:
  std::vector<RouteEntry> entries_;
};

}  // namespace affinity
