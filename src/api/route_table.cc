#include "api/route_table.h"

#include "api/route_util.h"
#include "base/strings.h"

namespace affinity {
namespace {

std::vector<std::string_view> Segments(std::string_view path) {
  std::vector<std::string_view> out;
  if (path.empty() || path[0] != '/') return out;
  size_t start = 1;
  while (true) {
    const size_t slash = path.find('/', start);
    out.push_back(path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

bool IsParam(std::string_view s) { return s.size() > 2 && s.front() == '{' && s.back() == '}'; }
bool IsRestParam(std::string_view s) { return IsParam(s) && s[s.size() - 2] == '*'; }
std::string ParamName(std::string_view s) {
  return std::string(s.substr(1, s.size() - (IsRestParam(s) ? 3 : 2)));
}

// One pattern segment against one path segment.
bool MatchSegment(std::string_view pattern, std::string_view segment, PathArgs* args) {
  if (!IsParam(pattern)) return pattern == segment;
  if (segment.empty()) return false;
  (*args)[ParamName(pattern)] = UrlDecode(segment);
  return true;
}

}  // namespace

bool MatchPattern(std::string_view pattern, std::string_view path, PathArgs* args) {
  // Most patterns fail on their literal start: a comparison, no allocation.
  const size_t brace = pattern.find('{');
  if (path.substr(0, brace) != pattern.substr(0, brace)) return false;
  if (brace == std::string_view::npos) {
    if (args) args->clear();
    return true;
  }
  const std::vector<std::string_view> p = Segments(pattern), s = Segments(path);
  if (p.empty() || s.empty()) return false;
  size_t rest = p.size();
  for (size_t i = 0; i < p.size(); ++i)
    if (IsRestParam(p[i])) rest = i;
  PathArgs found;
  if (rest == p.size()) {
    if (p.size() != s.size()) return false;
    for (size_t i = 0; i < p.size(); ++i)
      if (!MatchSegment(p[i], s[i], &found)) return false;
  } else {
    const size_t after = p.size() - rest - 1;  // literal segments after the rest
    if (s.size() < rest + 1 + after) return false;
    for (size_t i = 0; i < rest; ++i)
      if (!MatchSegment(p[i], s[i], &found)) return false;
    for (size_t i = 0; i < after; ++i)
      if (!MatchSegment(p[rest + 1 + i], s[s.size() - after + i], &found)) return false;
    // The rest: the path's text between the segments before and after it.
    const std::string_view first = s[rest], last = s[s.size() - after - 1];
    const std::string_view whole(first.data(), size_t(last.data() + last.size() - first.data()));
    if (whole.empty()) return false;
    found[ParamName(p[rest])] = UrlDecode(whole);
  }
  if (args) *args = std::move(found);
  return true;
}

absl::Status RouteTable::Add(RouteEntry entry) {
  const std::vector<std::string_view> p = Segments(entry.pattern);
  int rests = 0;
  for (std::string_view seg : p) {
    if (seg.find_first_of("{}") != std::string_view::npos && !IsParam(seg))
      return absl::InvalidArgumentError("route pattern '" + entry.pattern + "': a {parameter} is a whole segment");
    rests += IsRestParam(seg);
  }
  if (p.empty() || rests > 1)
    return absl::InvalidArgumentError("route pattern '" + entry.pattern + "': starts with / and has at most one {name*}");
  for (const RouteEntry& e : entries_)
    if (e.method == entry.method && e.pattern == entry.pattern)
      return absl::InvalidArgumentError("route " + entry.method + " " + entry.pattern + " is there already");
  entries_.push_back(std::move(entry));
  return absl::OkStatus();
}

RouteTable::Match RouteTable::Find(std::string_view method, std::string_view path) const {
  Match m;
  const std::string* pattern = nullptr;
  for (const RouteEntry& e : entries_) {
    if (pattern ? e.pattern != *pattern : !MatchPattern(e.pattern, path, &m.args)) continue;
    if (!pattern) {
      pattern = &e.pattern;
      m.name = e.name;
    }
    m.allow += (m.allow.empty() ? "" : ", ") + e.method;
    if (!m.entry && e.method == method) {
      m.entry = &e;
      m.name = e.name;
    }
  }
  return m;
}

}  // namespace affinity
