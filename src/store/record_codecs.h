// The byte layouts of the store's keys and values (docs/storage.md): big-endian
// keys that sort in log order, the entity record, the stamped audit value, the
// idempotency record and the event's time (and the counters, declared in
// store.h). Internal to store/.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "base/ids.h"
#include "store/store.h"

namespace affinity::store_internal {

std::string BigEndian64(uint64_t v);
uint64_t FromBigEndian64(std::string_view s);
// follower Ref ‖ target Ref, big endian.
std::string FollowKey(Ref a, Ref b);

std::string EncodeEntity(const EntityRecord& e);
bool DecodeEntity(std::string_view key, std::string_view v, EntityRecord* e);

// An audit value: a stamp byte, the write time (i64 little endian), the record.
std::string EncodeAudit(int64_t written_ms, std::string_view record);
// The write time (0 when unknown) and the record of an audit value.
std::pair<int64_t, std::string_view> DecodeAudit(std::string_view v);
inline int64_t AuditTime(std::string_view v) { return DecodeAudit(v).first; }

// An idempotency record's value: a version byte (1), the write time (i64 little
// endian), the status (u16 little endian), the fingerprint's length (u8) and
// bytes, the response body.
std::string EncodeIdempotency(const IdempotencyRecord& r);
bool DecodeIdempotency(std::string_view key, std::string_view v, IdempotencyRecord* r);
// Its write time (0 when undecodable: kept).
int64_t IdempotencyTime(std::string_view v);

// The ts of an encoded event, read from its head only (0 when too short).
int64_t EventTime(std::string_view v);

}  // namespace affinity::store_internal
