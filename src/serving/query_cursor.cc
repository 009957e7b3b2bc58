#include "serving/query_cursor.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/escaping.h"
#include "base/strings.h"

namespace affinity {
namespace {

// Record layout (little-endian): u8 version (1), i64 issued_ms, u8 target,
// u64 viewer hash, u64 query hash, varint count, varint deltas of the served
// dense ids (ascending), u32 CRC-32C of everything before it.
constexpr uint8_t kVersion = 1;

// FNV-1a, 64 bits: stable across builds and restarts (std::hash is not promised to be).
struct Fnv {
  uint64_t h = 1469598103934665603ull;
  void Add(std::string_view s) {
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    h = (h ^ 0xFF) * 1099511628211ull;  // a separator no UTF-8 text holds
  }
  void Add(const std::vector<std::string>& v) {
    Add(std::to_string(v.size()));
    for (const auto& s : v) Add(s);
  }
};

uint64_t ViewerHash(const QueryRequest& q) {
  Fnv f;
  f.Add(q.viewer_id);
  return f.h;
}

// Everything that shapes the list, but not k (pages may differ in size), the
// context, the explanations or the deadline.
uint64_t QueryHash(const QueryRequest& q) {
  Fnv f;
  f.Add(q.seeds);
  f.Add(q.exclude);
  f.Add(q.labels_any);
  f.Add(q.labels_none);
  f.Add(q.exclude_engaged ? (*q.exclude_engaged ? "1" : "0") : "-");
  f.Add(std::to_string(q.max_per_creator));
  f.Add(std::to_string(q.diversity));
  f.Add(std::to_string(q.new_creator_share));
  f.Add(q.ranker == RankerMode::kOff ? "off" : "");
  return f.h;
}

template <typename T>
void PutFixed(std::string* out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out->append(b, sizeof(T));
}
void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(char(v | 0x80));
    v >>= 7;
  }
  out->push_back(char(v));
}

class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}
  template <typename T>
  bool Fixed(T* v) {
    if (s_.size() - pos_ < sizeof(T)) return false;
    std::memcpy(v, s_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool Varint(uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64 && pos_ < s_.size(); shift += 7) {
      const auto b = static_cast<unsigned char>(s_[pos_++]);
      *v |= uint64_t(b & 0x7F) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  }
  bool done() const { return pos_ == s_.size(); }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

bool Decode(std::string_view text, QueryCursor* c) {
  std::string raw;
  if (text.size() > 64 * 1024 || !absl::WebSafeBase64Unescape(absl::string_view(text.data(), text.size()), &raw))
    return false;
  if (raw.size() < 4) return false;
  uint32_t crc;
  std::memcpy(&crc, raw.data() + raw.size() - 4, 4);
  if (Crc32c(raw.data(), raw.size() - 4) != crc) return false;
  Reader r(std::string_view(raw).substr(0, raw.size() - 4));
  uint8_t version, target;
  uint64_t n;
  if (!r.Fixed(&version) || version != kVersion || !r.Fixed(&c->issued_ms) || !r.Fixed(&target) || target >= kNumKinds ||
      !r.Fixed(&c->viewer_hash) || !r.Fixed(&c->query_hash) || !r.Varint(&n) || n > kMaxCursorServed)
    return false;
  c->target = Kind(target);
  uint64_t id = 0;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t delta;
    if (!r.Varint(&delta)) return false;
    id += delta;
    if (id > kMaxDenseId) return false;
    c->served.push_back(DenseId(id));
  }
  return r.done();
}

}  // namespace

OpenedCursor OpenCursor(std::string_view text, const QueryRequest& req, int64_t now_ms) {
  OpenedCursor out;
  if (!Decode(text, &out.cursor)) {
    out.problem = CursorProblem::kMalformed;
    out.message = "cursor is not one this server issued (copy next_cursor from a response as it is)";
    return out;
  }
  const QueryCursor& c = out.cursor;
  if (now_ms - c.issued_ms > kCursorLifetimeMs) {
    out.problem = CursorProblem::kExpired;
    out.message = "cursor expired: it was issued " + std::to_string((now_ms - c.issued_ms) / 60000) +
                  " minutes ago and a cursor lasts 10; send the query again without a cursor to start over";
  } else if (c.viewer_hash != ViewerHash(req)) {
    out.problem = CursorProblem::kOtherQuery;
    out.message = "cursor was issued for another viewer_id; a cursor continues the query that gave it";
  } else if (c.target != req.target) {
    out.problem = CursorProblem::kOtherQuery;
    out.message = "cursor was issued for target '" + std::string(KindName(c.target)) +
                  "s'; a cursor continues the query that gave it";
  } else if (c.query_hash != QueryHash(req)) {
    out.problem = CursorProblem::kOtherQuery;
    out.message =
        "cursor was issued for another query (seeds, exclude, filter or ranking options differ); a cursor "
        "continues the query that gave it";
  }
  return out;
}

std::string NextCursor(const QueryRequest& req, const QueryCursor* previous, const QueryResponse& resp,
                       int64_t now_ms) {
  if (resp.results.size() < size_t(req.k)) return "";
  std::vector<DenseId> served = previous ? previous->served : std::vector<DenseId>{};
  for (const QueryResult& r : resp.results) served.push_back(r.ref.id());
  std::sort(served.begin(), served.end());
  served.erase(std::unique(served.begin(), served.end()), served.end());
  if (served.size() >= kMaxCursorServed) return "";
  std::string raw;
  PutFixed(&raw, kVersion);
  PutFixed(&raw, now_ms);
  PutFixed(&raw, uint8_t(req.target));
  PutFixed(&raw, ViewerHash(req));
  PutFixed(&raw, QueryHash(req));
  PutVarint(&raw, served.size());
  DenseId last = 0;
  for (DenseId id : served) {
    PutVarint(&raw, id - last);
    last = id;
  }
  PutFixed(&raw, Crc32c(raw.data(), raw.size()));
  return absl::WebSafeBase64Escape(raw);
}

}  // namespace affinity
