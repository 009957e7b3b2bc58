#include "data/importers.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "base/json_writer.h"
#include "base/status.h"
#include "base/strings.h"

namespace affinity {
namespace {

absl::Status LineError(const std::string& file, size_t line, const std::string& msg) {
  return absl::InvalidArgumentError(file + ":" + std::to_string(line) + ": " + msg);
}

// Calls fn(line_number, line) for each line; fn returns a Status.
template <typename Fn>
absl::Status ForEachLine(const std::string& path, Fn&& fn) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError("cannot open " + path);
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    AFF_RETURN_IF_ERROR(fn(n, std::string_view(StripCr(line))));
  }
  if (in.bad()) return absl::InternalError("read error in " + path);
  return absl::OkStatus();
}

std::string NameAttribute(std::string_view name) {
  std::string out = "{\"name\":\"";
  JsonWriter::AppendEscaped(out, name);
  out += "\"}";
  return out;
}

}  // namespace

namespace {

// What a format's lines share while its files are read: the ids seen so far.
struct ImportState {
  std::unordered_set<int64_t> items, nodes;
  std::unordered_set<uint64_t> edges;
  std::unordered_set<std::string> users, artists;
  size_t users_read = 0;  // lightgcn's lines with a user
};

absl::Status NativeEntityLine(const std::string& ef, size_t n, std::string_view line, ParsedDataset* out) {
  if (n == 1) {
    if (line.substr(0, 2) != "id")
      return LineError(ef, n, "expected the header 'id\\tkind\\tcreator_id\\tcohort' (and optionally '\\tname')");
    return absl::OkStatus();
  }
  if (line.empty()) return absl::OkStatus();
  auto f = Split(line, '\t');
  if (f.size() < 3 || f.size() > 5)
    return LineError(ef, n, "expected 4 tab-separated fields (id, kind, creator_id, cohort) and an optional name");
  RawEntity e;
  e.id = f[0];
  e.kind = f[1];
  e.creator_id = f[2];
  if (f.size() >= 4) e.cohort = f[3];
  if (f.size() == 5 && !f[4].empty()) e.attributes = NameAttribute(f[4]);
  out->entities.push_back(std::move(e));
  return absl::OkStatus();
}

absl::Status NativeEventLine(const std::string& vf, size_t n, std::string_view line, ParsedDataset* out) {
  if (n == 1) {
    if (line.substr(0, 2) != "ts") return LineError(vf, n, "expected the header 'ts\\tviewer_id\\tentity_id\\taction\\tweight'");
    return absl::OkStatus();
  }
  auto f = Split(line, '\t');
  if (f.size() != 5) return LineError(vf, n, "expected 5 tab-separated fields (ts, viewer_id, entity_id, action, weight)");
  RawEvent e;
  auto ts = ParseInt64(f[0]);
  if (!ts) return LineError(vf, n, "ts '" + std::string(f[0]) + "' is not an integer (unix ms)");
  e.ts = *ts;
  e.viewer_id = f[1];
  e.entity_id = f[2];
  e.action = f[3];
  if (!f[4].empty()) {
    auto w = ParseDouble(f[4]);
    if (!w) return LineError(vf, n, "weight '" + std::string(f[4]) + "' is not a number");
    e.weight = *w;
  }
  out->events.push_back(std::move(e));
  return absl::OkStatus();
}

absl::Status LightgcnLine(ImportState& st, const std::string& file, size_t n, std::string_view line, int64_t ts,
                          ParsedDataset* out) {
  auto f = SplitWhitespace(line);
  if (f.empty()) return absl::OkStatus();
  auto u = ParseInt64(f[0]);
  if (!u || *u < 0) return LineError(file, n, "user id '" + std::string(f[0]) + "' is not a non-negative integer");
  std::string uid = absl::StrCat("u", *u);
  out->entities.push_back({uid, "user", "", "", ""});
  ++st.users_read;
  for (size_t k = 1; k < f.size(); ++k) {
    auto i = ParseInt64(f[k]);
    if (!i || *i < 0) return LineError(file, n, "item id '" + std::string(f[k]) + "' is not a non-negative integer");
    if (st.items.insert(*i).second) out->entities.push_back({absl::StrCat("i", *i), "item", "", "", ""});
    RawEvent e;
    e.viewer_id = uid;
    e.entity_id = absl::StrCat("i", *i);
    e.action = "click";
    e.weight = 1.0;
    e.ts = ts;
    out->events.push_back(std::move(e));
  }
  return absl::OkStatus();
}

void AddUser(ImportState& st, const std::string& id, ParsedDataset* out) {
  if (st.users.insert(id).second) out->entities.push_back({id, "user", "", "", ""});
}

absl::Status HetrecArtistLine(ImportState& st, const std::string& af, size_t n, std::string_view line,
                              ParsedDataset* out) {
  if (n == 1 || line.empty()) return absl::OkStatus();
  auto f = Split(line, '\t');
  if (f.size() < 2 || !ParseInt64(f[0])) return LineError(af, n, "expected 'id\\tname\\t...'");
  std::string id = "a" + std::string(f[0]);
  if (st.artists.insert(id).second) out->entities.push_back({id, "creator", "", "", NameAttribute(f[1])});
  return absl::OkStatus();
}

absl::Status HetrecPlayLine(ImportState& st, const std::string& pf, size_t n, std::string_view line, int64_t ts,
                            ParsedDataset* out) {
  if (n == 1) {
    if (line.substr(0, 6) != "userID") return LineError(pf, n, "expected the header 'userID\\tartistID\\tweight'");
    return absl::OkStatus();
  }
  if (line.empty()) return absl::OkStatus();
  auto f = Split(line, '\t');
  if (f.size() != 3) return LineError(pf, n, "expected 3 tab-separated fields (userID, artistID, weight)");
  auto u = ParseInt64(f[0]), a = ParseInt64(f[1]);
  auto w = ParseDouble(f[2]);
  if (!u || !a || !w || *w < 0) return LineError(pf, n, "expected integer ids and a non-negative play count");
  std::string uid = "u" + std::string(f[0]), aid = "a" + std::string(f[1]);
  AddUser(st, uid, out);
  if (st.artists.insert(aid).second) out->entities.push_back({aid, "creator", "", "", ""});
  RawEvent e;
  e.viewer_id = uid;
  e.entity_id = aid;
  e.action = "play";
  e.weight = std::log1p(*w);
  e.ts = ts;
  out->events.push_back(std::move(e));
  return absl::OkStatus();
}

absl::Status HetrecFriendLine(ImportState& st, const std::string& ff, size_t n, std::string_view line, int64_t ts,
                              ParsedDataset* out) {
  if (n == 1) {
    if (line.substr(0, 6) != "userID") return LineError(ff, n, "expected the header 'userID\\tfriendID'");
    return absl::OkStatus();
  }
  if (line.empty()) return absl::OkStatus();
  auto f = Split(line, '\t');
  if (f.size() != 2 || !ParseInt64(f[0]) || !ParseInt64(f[1]))
    return LineError(ff, n, "expected 2 tab-separated integer ids (userID, friendID)");
  if (f[0] == f[1]) return absl::OkStatus();
  std::string a = "u" + std::string(f[0]), b = "u" + std::string(f[1]);
  AddUser(st, a, out);
  AddUser(st, b, out);
  // Friendships are listed in both directions: each row is one follow.
  RawEvent e;
  e.viewer_id = a;
  e.entity_id = b;
  e.action = "follow";
  e.ts = ts;
  out->events.push_back(std::move(e));
  return absl::OkStatus();
}

absl::Status SnapEdgeLine(ImportState& st, const std::string& file, size_t n, std::string_view line, int64_t ts,
                          ParsedDataset* out) {
  if (line.empty() || line[0] == '#' || line[0] == '%') return absl::OkStatus();
  auto f = SplitWhitespace(line);
  if (f.size() < 2) return LineError(file, n, "expected an edge 'u v'");
  auto u = ParseInt64(f[0]), v = ParseInt64(f[1]);
  if (!u || !v || *u < 0 || *v < 0 || *u > 0xFFFFFFF || *v > 0xFFFFFFF)
    return LineError(file, n, "node ids must be non-negative integers");
  if (*u == *v) return absl::OkStatus();
  for (int64_t x : {*u, *v})
    if (st.nodes.insert(x).second) out->entities.push_back({absl::StrCat("n", x), "user", "", "", ""});
  // Undirected: both directions become follows, once.
  for (auto [a, b] : {std::pair{*u, *v}, std::pair{*v, *u}}) {
    if (!st.edges.insert((uint64_t(a) << 32) | uint64_t(b)).second) continue;
    RawEvent e;
    e.viewer_id = absl::StrCat("n", a);
    e.entity_id = absl::StrCat("n", b);
    e.action = "follow";
    e.ts = ts;
    out->events.push_back(std::move(e));
  }
  return absl::OkStatus();
}

absl::Status ImportLine(ImportState& st, ImportFile file, const std::string& name, size_t n, std::string_view line,
                        int64_t ts, ParsedDataset* out) {
  switch (file) {
    case ImportFile::kNativeEntities: return NativeEntityLine(name, n, line, out);
    case ImportFile::kNativeEvents: return NativeEventLine(name, n, line, out);
    case ImportFile::kLightgcn: return LightgcnLine(st, name, n, line, ts, out);
    case ImportFile::kHetrecArtists: return HetrecArtistLine(st, name, n, line, out);
    case ImportFile::kHetrecPlays: return HetrecPlayLine(st, name, n, line, ts, out);
    case ImportFile::kHetrecFriends: return HetrecFriendLine(st, name, n, line, ts, out);
    case ImportFile::kSnapEdges: return SnapEdgeLine(st, name, n, line, ts, out);
  }
  return absl::InvalidArgumentError("unknown import file");
}

// Reads `path` a line at a time as `file`.
absl::Status ImportFileLines(ImportState& st, ImportFile file, const std::string& path, int64_t ts,
                             ParsedDataset* out) {
  return ForEachLine(path, [&](size_t n, std::string_view line) { return ImportLine(st, file, path, n, line, ts, out); });
}

}  // namespace

absl::Status ParseImportLines(ImportFile file, const std::string& name, std::string_view text, int64_t ts,
                              ParsedDataset* out) {
  ImportState st;
  size_t n = 0;
  while (!text.empty()) {  // as std::getline: a last line without '\n' is a line, a trailing '\n' ends one
    const size_t eol = text.find('\n');
    std::string line(text.substr(0, eol));
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    AFF_RETURN_IF_ERROR(ImportLine(st, file, name, ++n, StripCr(line), ts, out));
  }
  return absl::OkStatus();
}

absl::Status ParseNative(const std::string& dir, ParsedDataset* out) {
  const std::string ef = dir + "/entities.tsv", vf = dir + "/events.tsv";
  ImportState st;
  AFF_RETURN_IF_ERROR(ImportFileLines(st, ImportFile::kNativeEntities, ef, 0, out));
  // Entities keep their line numbers only when the file has no blank lines; map them.
  out->entities_where = {ef, 2};
  AFF_RETURN_IF_ERROR(ImportFileLines(st, ImportFile::kNativeEvents, vf, 0, out));
  out->events_where = {vf, 2};
  return absl::OkStatus();
}

absl::Status ParseLightgcn(const std::string& path, int64_t ts, ParsedDataset* out) {
  std::string file = std::filesystem::is_directory(path) ? path + "/train.txt" : path;
  ImportState st;
  AFF_RETURN_IF_ERROR(ImportFileLines(st, ImportFile::kLightgcn, file, ts, out));
  if (st.users_read == 0) return absl::InvalidArgumentError(file + ": no users");
  out->entities_where = {file};
  out->events_where = {file};
  return absl::OkStatus();
}

absl::Status ParseHetrecLastfm(const std::string& dir, int64_t ts, ParsedDataset* out) {
  const std::string af = dir + "/artists.dat", pf = dir + "/user_artists.dat", ff = dir + "/user_friends.dat";
  ImportState st;
  if (std::filesystem::exists(af)) AFF_RETURN_IF_ERROR(ImportFileLines(st, ImportFile::kHetrecArtists, af, ts, out));
  AFF_RETURN_IF_ERROR(ImportFileLines(st, ImportFile::kHetrecPlays, pf, ts, out));
  AFF_RETURN_IF_ERROR(ImportFileLines(st, ImportFile::kHetrecFriends, ff, ts, out));
  out->entities_where = {dir};
  out->events_where = {dir};
  out->ordered = false;
  return absl::OkStatus();
}

absl::Status ParseSnapEdges(const std::string& file, int64_t ts, ParsedDataset* out) {
  ImportState st;
  AFF_RETURN_IF_ERROR(ImportFileLines(st, ImportFile::kSnapEdges, file, ts, out));
  if (st.nodes.empty()) return absl::InvalidArgumentError(file + ": no edges");
  out->entities_where = {file};
  out->events_where = {file};
  return absl::OkStatus();
}

absl::Status ImportDataset(const std::string& format, const std::string& path, int64_t now_ms,
                           Ingestor* ingestor, ImportStats* stats) {
  ParsedDataset d;
  if (format == "native" || format == "synthetic") {
    AFF_RETURN_IF_ERROR(ParseNative(path, &d));
  } else if (format == "lightgcn") {
    AFF_RETURN_IF_ERROR(ParseLightgcn(path, now_ms, &d));
  } else if (format == "hetrec-lastfm") {
    AFF_RETURN_IF_ERROR(ParseHetrecLastfm(path, now_ms, &d));
  } else if (format == "snap-edges") {
    AFF_RETURN_IF_ERROR(ParseSnapEdges(path, now_ms, &d));
  } else {
    return absl::InvalidArgumentError("unknown format '" + format +
                                      "'; expected native, synthetic, hetrec-lastfm, lightgcn or snap-edges");
  }
  AFF_RETURN_IF_ERROR(ingestor->Import(d.entities, d.entities_where, d.events, d.events_where));
  // Remembered in the data dir: `batch` builds no session neighbours from a log
  // whose timelines carry no order.
  if (!d.ordered) AFF_RETURN_IF_ERROR(ingestor->store()->PutMeta(kMetaUnorderedTimelines, "1"));
  if (stats) *stats = {d.entities.size(), d.events.size(), d.ordered};
  return absl::OkStatus();
}

}  // namespace affinity
