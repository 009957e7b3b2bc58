#include "store/record_codecs.h"

#include <algorithm>
#include <cstring>

namespace affinity::store_internal {

std::string BigEndian64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 7; i >= 0; --i) {
    s[i] = char(v & 0xFF);
    v >>= 8;
  }
  return s;
}
uint64_t FromBigEndian64(std::string_view s) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | uint8_t(s[i]);
  return v;
}
std::string FollowKey(Ref a, Ref b) {
  return BigEndian64((uint64_t(a.bits) << 32) | b.bits);
}

// The entity value: u32 Ref, u32 creator Ref, then either a u16 cohort length
// and the cohort (the first layout), or 0xFFFF and the extended layout: u8 2,
// u16 cohort length, cohort, i64 expires_at (unix ms, 0 = never), u8 deleted,
// u16 label count, each label as u16 length and bytes. The attributes JSON
// fills the rest in both.
constexpr uint16_t kExtended = 0xFFFF;

template <typename T>
void Put(std::string* v, T x) {
  v->append(reinterpret_cast<const char*>(&x), sizeof x);
}
void PutShortString(std::string* v, std::string_view s) {
  const uint16_t n = uint16_t(std::min<size_t>(s.size(), 65534));
  Put(v, n);
  v->append(s.data(), n);
}

std::string EncodeEntity(const EntityRecord& e) {
  std::string v;
  Put(&v, e.ref.bits);
  Put(&v, e.creator.bits);
  Put(&v, kExtended);
  Put(&v, uint8_t(2));
  PutShortString(&v, e.cohort);
  Put(&v, e.expires_at);
  Put(&v, uint8_t(e.deleted ? 1 : 0));
  Put(&v, uint16_t(std::min<size_t>(e.labels.size(), 65535)));
  for (size_t i = 0; i < e.labels.size() && i < 65535; ++i) PutShortString(&v, e.labels[i]);
  v.append(e.attributes);
  return v;
}

bool DecodeEntity(std::string_view key, std::string_view v, EntityRecord* e) {
  size_t pos = 0;
  auto get = [&](void* out, size_t n) {
    if (v.size() - pos < n) return false;
    std::memcpy(out, v.data() + pos, n);
    pos += n;
    return true;
  };
  auto get_string = [&](std::string* out) {
    uint16_t n;
    if (!get(&n, 2) || v.size() - pos < n) return false;
    out->assign(v.data() + pos, n);
    pos += n;
    return true;
  };
  uint32_t ref, creator;
  uint16_t cl;
  if (!get(&ref, 4) || !get(&creator, 4) || !get(&cl, 2)) return false;
  e->ext_id.assign(key);
  e->ref = Ref::FromBits(ref);
  e->creator = Ref::FromBits(creator);
  e->labels.clear();
  e->expires_at = 0;
  e->deleted = false;
  if (cl != kExtended) {
    if (v.size() - pos < cl) return false;
    e->cohort.assign(v.data() + pos, cl);
    pos += cl;
  } else {
    uint8_t version, deleted;
    uint16_t n_labels;
    if (!get(&version, 1) || version != 2 || !get_string(&e->cohort) || !get(&e->expires_at, 8) ||
        !get(&deleted, 1) || !get(&n_labels, 2))
      return false;
    e->deleted = deleted != 0;
    if (v.size() - pos < size_t(n_labels) * 2) return false;  // each label takes its length at least
    e->labels.resize(n_labels);
    for (auto& label : e->labels)
      if (!get_string(&label)) return false;
  }
  e->attributes.assign(v.data() + pos, v.size() - pos);
  return true;
}

// An audit value is kAuditStamped, the write time (8 bytes, unix ms, little
// endian) and the JSON. Records written before stamps existed are bare JSON
// ('{' first); the query engine has always written them as
// {"request_id":"...","ts":<unix ms>,...}, so their serving time is their write
// time. A bare value of any other shape has none and never expires.
namespace {

constexpr char kAuditStamped = '\x01';

int64_t UnstampedAuditTime(std::string_view json) {
  constexpr std::string_view kHead = "{\"request_id\":\"", kTs = "\",\"ts\":";
  if (json.substr(0, kHead.size()) != kHead) return 0;
  const size_t quote = json.find('"', kHead.size());
  if (quote == std::string_view::npos || quote > 128 || json.substr(quote, kTs.size()) != kTs) return 0;
  int64_t ms = 0;
  size_t i = quote + kTs.size(), digits = 0;
  for (; i < json.size() && json[i] >= '0' && json[i] <= '9' && digits < 16; ++i, ++digits) ms = ms * 10 + (json[i] - '0');
  if (digits == 0 || digits == 16 || i >= json.size() || (json[i] != ',' && json[i] != '}')) return 0;
  return ms;
}

}  // namespace

std::string EncodeAudit(int64_t written_ms, std::string_view json) {
  std::string v;
  v.reserve(9 + json.size());
  v.push_back(kAuditStamped);
  v.append(reinterpret_cast<const char*>(&written_ms), 8);
  v.append(json);
  return v;
}

// The write time (0 when unknown) and the JSON of an audit value.
std::pair<int64_t, std::string_view> DecodeAudit(std::string_view v) {
  if (v.size() < 9 || v[0] != kAuditStamped) return {UnstampedAuditTime(v), v};
  int64_t ms;
  std::memcpy(&ms, v.data() + 1, 8);
  return {ms, v.substr(9)};
}

// An event value starts with its version byte and its i64 ts (EncodeEvent); the
// compaction filter reads only that, not the whole event.
namespace {
constexpr char kIdempotencyVersion = '\x01';
constexpr size_t kIdempotencyHead = 1 + 8 + 2 + 1;
}  // namespace

std::string EncodeIdempotency(const IdempotencyRecord& r) {
  std::string v;
  v.reserve(kIdempotencyHead + r.fingerprint.size() + r.body.size());
  v.push_back(kIdempotencyVersion);
  v.append(reinterpret_cast<const char*>(&r.written_ms), 8);
  const uint16_t status = uint16_t(r.status);
  v.append(reinterpret_cast<const char*>(&status), 2);
  v.push_back(char(uint8_t(std::min<size_t>(r.fingerprint.size(), 255))));
  v.append(r.fingerprint, 0, 255);
  v.append(r.body);
  return v;
}

bool DecodeIdempotency(std::string_view key, std::string_view v, IdempotencyRecord* r) {
  if (v.size() < kIdempotencyHead || v[0] != kIdempotencyVersion) return false;
  const size_t fp = uint8_t(v[11]);
  if (v.size() < kIdempotencyHead + fp) return false;
  uint16_t status;
  std::memcpy(&r->written_ms, v.data() + 1, 8);
  std::memcpy(&status, v.data() + 9, 2);
  r->key = std::string(key);
  r->status = status;
  r->fingerprint = std::string(v.substr(kIdempotencyHead, fp));
  r->body = std::string(v.substr(kIdempotencyHead + fp));
  return true;
}

int64_t IdempotencyTime(std::string_view v) {
  if (v.size() < kIdempotencyHead || v[0] != kIdempotencyVersion) return 0;
  int64_t ms;
  std::memcpy(&ms, v.data() + 1, 8);
  return ms;
}

int64_t EventTime(std::string_view v) {
  if (v.size() < 9) return 0;
  int64_t ts;
  std::memcpy(&ts, v.data() + 1, 8);
  return ts;
}

}  // namespace affinity::store_internal

namespace affinity {

std::string EncodeCounters(const std::vector<int64_t>& values) {
  std::string out(values.size() * 8, '\0');
  for (size_t i = 0; i < values.size(); ++i) {
    const uint64_t v = uint64_t(values[i]);
    for (int b = 0; b < 8; ++b) out[i * 8 + size_t(b)] = char((v >> (8 * b)) & 0xFF);
  }
  return out;
}

std::vector<int64_t> DecodeCounters(std::string_view bytes) {
  std::vector<int64_t> out(bytes.size() / 8);
  for (size_t i = 0; i < out.size(); ++i) {
    uint64_t v = 0;
    for (int b = 0; b < 8; ++b) v |= uint64_t(uint8_t(bytes[i * 8 + size_t(b)])) << (8 * b);
    out[i] = int64_t(v);
  }
  return out;
}

}  // namespace affinity
