// Idempotency keys: the key's rules, the request fingerprint, the claim that
// keeps concurrent requests with one key from applying it twice, the record
// stored in the same write as its batch, and expiry past the window.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "api/requests.h"
#include "base/config.h"
#include "state/idempotency_keys.h"
#include "store/fault_injection.h"
#include "testing/world.h"
#include "config/config.h"

namespace affinity {
namespace {

using testing::TempDir;
using testing::World;

std::string Hex(const std::string& bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) out += {kDigits[c >> 4], kDigits[c & 15]};
  return out;
}

IdempotencyRecord Answer(IdempotencyRecord r, int status, const std::string& body) {
  r.status = status;
  r.body = body;
  return r;
}

TEST(IdempotencyKeysTest, AKeyIsOneTo255PrintableAsciiCharacters) {
  EXPECT_TRUE(IdempotencyKeys::CheckKey("a").ok());
  EXPECT_TRUE(IdempotencyKeys::CheckKey("8e0f3c2a-4b7d-4f5e-9c1a-2d3e4f5a6b7c").ok());
  EXPECT_TRUE(IdempotencyKeys::CheckKey(" ~!\"key with spaces and quotes\"").ok());
  EXPECT_TRUE(IdempotencyKeys::CheckKey(std::string(255, 'k')).ok());
  EXPECT_EQ(IdempotencyKeys::CheckKey("").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(IdempotencyKeys::CheckKey(std::string(256, 'k')).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(IdempotencyKeys::CheckKey("tab\tkey").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(IdempotencyKeys::CheckKey("caf\xc3\xa9").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(IdempotencyKeys::CheckKey(std::string("nul\0key", 7)).code(), absl::StatusCode::kInvalidArgument);
}

TEST(IdempotencyKeysTest, TheFingerprintIsTheSha256OfTheLengthPrefixedMethodPathAndBody) {
  auto fp = IdempotencyKeys::Fingerprint("POST", "/affinity/feedback", R"({"events":[]})");
  ASSERT_TRUE(fp.ok()) << fp.status();
  // sha256(u64le(4) "POST" u64le(18) "/affinity/feedback" u64le(13) body), computed with Python's hashlib.
  EXPECT_EQ(Hex(*fp), "17ed4e67800f02f9dd37bd5d63e4c49ad02e216d676bed5b316a7d5cac88a089");
  EXPECT_NE(*IdempotencyKeys::Fingerprint("POST", "/affinity/entities", R"({"events":[]})"), *fp);
  EXPECT_NE(*IdempotencyKeys::Fingerprint("POST", "/affinity/feedback", R"({"events":[ ]})"), *fp);
  // The parts cannot run into each other.
  EXPECT_NE(*IdempotencyKeys::Fingerprint("POST", "/a", "b"), *IdempotencyKeys::Fingerprint("POST", "/ab", ""));
}

TEST(IdempotencyKeysTest, AFirstRequestIsAppliedOnceAndItsRetryReplaysTheFirstResponse) {
  World w;
  w.BuildSmall();
  IdempotencyKeys keys(w.store.get());
  const std::vector<RawEvent> batch = {World::Ev("u1", "i3", "click"), World::Ev("u1", "i4", "like")};
  const uint64_t before = w.store->NextOffset();

  auto first = keys.Begin("k1", "fingerprint-a");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->outcome, IdempotencyKeys::Outcome::kFirst);
  EXPECT_EQ(first->record.key, "k1");
  // While it is applied, another request with the key is told to retry.
  EXPECT_EQ(keys.Begin("k1", "fingerprint-a")->outcome, IdempotencyKeys::Outcome::kInFlight);
  const IdempotencyRecord record = Answer(first->record, 202, R"({"accepted":2})");
  ASSERT_TRUE(w.ingestor->AddFeedback(batch, {"events"}, &record).ok());
  first->claim.Release();
  EXPECT_EQ(keys.in_flight(), 0u);

  auto retry = keys.Begin("k1", "fingerprint-a");
  ASSERT_TRUE(retry.ok());
  ASSERT_EQ(retry->outcome, IdempotencyKeys::Outcome::kReplay);
  EXPECT_EQ(retry->record.status, 202);
  EXPECT_EQ(retry->record.body, R"({"accepted":2})");
  EXPECT_FALSE(retry->claim.held());
  EXPECT_EQ(keys.Begin("k1", "fingerprint-b")->outcome, IdempotencyKeys::Outcome::kReused);
  EXPECT_EQ(keys.Begin("k2", "fingerprint-a")->outcome, IdempotencyKeys::Outcome::kFirst);
  EXPECT_EQ(w.store->NextOffset(), before + 2) << "the batch was stored once";

  // A refused batch stores nothing, its key included: its retry is a first request.
  auto refused = keys.Begin("k3", "fingerprint-c");
  ASSERT_EQ(refused->outcome, IdempotencyKeys::Outcome::kFirst);
  const IdempotencyRecord k3 = Answer(refused->record, 202, R"({"accepted":1})");
  EXPECT_FALSE(w.ingestor->AddFeedback({World::Ev("u1", "i3", "teleport")}, {"events"}, &k3).ok());
  refused->claim.Release();
  EXPECT_FALSE(w.store->GetIdempotencyRecord("k3")->has_value());
  EXPECT_EQ(keys.Begin("k3", "fingerprint-c")->outcome, IdempotencyKeys::Outcome::kFirst);
}

TEST(IdempotencyKeysTest, ConcurrentRequestsWithOneKeyApplyItOnce) {
  World w;
  w.BuildSmall();
  IdempotencyKeys keys(w.store.get());
  const uint64_t before = w.store->NextOffset();
  const std::vector<RawEvent> batch = {World::Ev("u2", "i5", "click")};
  constexpr int kThreads = 8, kRounds = 50;
  std::atomic<int> applied{0}, replayed{0}, in_flight{0};
  for (int round = 0; round < kRounds; ++round) {
    const std::string key = "key-" + std::to_string(round);
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&] {
        while (!go.load()) std::this_thread::yield();
        auto b = keys.Begin(key, "same");
        ASSERT_TRUE(b.ok());
        if (b->outcome == IdempotencyKeys::Outcome::kFirst) {
          const IdempotencyRecord r = Answer(b->record, 202, "{}");
          ASSERT_TRUE(w.ingestor->AddFeedback(batch, {"events"}, &r).ok());
          applied++;
        } else if (b->outcome == IdempotencyKeys::Outcome::kReplay) {
          replayed++;
        } else {
          ASSERT_EQ(b->outcome, IdempotencyKeys::Outcome::kInFlight);
          in_flight++;
        }
      });
    go = true;
    for (auto& t : threads) t.join();
  }
  EXPECT_EQ(applied.load(), kRounds) << "each key applied exactly once";
  EXPECT_EQ(applied + replayed + in_flight, kThreads * kRounds);
  EXPECT_EQ(w.store->NextOffset(), before + kRounds);
}

TEST(IdempotencyKeysTest, AKeyIsStoredInTheSameWriteAsItsBatchOrNotAtAll) {
  TempDir dir;
  auto faults = std::make_shared<FaultInjection>();
  IdempotencyRecord record{.key = "k", .fingerprint = std::string(32, 'f'), .status = 202, .body = "{}"};
  Event e;
  e.ts = 1'767'225'000'000;
  e.viewer = Ref(Kind::kUser, 1);
  e.entity = Ref(Kind::kItem, 2);
  e.action = Action::kClick;
  EntityRecord item;
  item.ref = Ref(Kind::kItem, 2);
  item.ext_id = "i2";
  {
    auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary, {.faults = faults});
    faults->FailWrites(true);
    std::vector<Event> events = {e};
    EXPECT_FALSE(store->AppendEvents(events, {}, &record).ok());
    EXPECT_FALSE(store->PutEntities({item}, &record).ok());
  }
  faults->FailWrites(false);
  {
    auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary, {.faults = faults});
    EXPECT_EQ(store->NextOffset(), 0u);
    EXPECT_FALSE(store->GetIdempotencyRecord("k")->has_value()) << "no key without its batch";
    std::vector<Event> events = {e};
    ASSERT_TRUE(store->AppendEvents(events, {}, &record).ok());
    IdempotencyRecord entities_key = record;
    entities_key.key = "k-entities";
    ASSERT_TRUE(store->PutEntities({item}, &entities_key).ok());
  }
  auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary);
  EXPECT_EQ(store->NextOffset(), 1u);
  auto got = store->GetIdempotencyRecord("k");
  ASSERT_TRUE(got.ok() && got->has_value()) << got.status();
  EXPECT_EQ((*got)->status, 202);
  EXPECT_EQ((*got)->body, "{}");
  EXPECT_EQ((*got)->fingerprint, record.fingerprint);
  EXPECT_GT((*got)->written_ms, 0);
  EXPECT_TRUE(store->GetIdempotencyRecord("k-entities")->has_value());
}

TEST(IdempotencyKeysTest, KeysPastTheWindowReadAsAbsentAndPruningRemovesThem) {
  TempDir dir;
  ManualClock clock;
  constexpr int64_t kHour = 3'600'000;
  const IdempotencyRecord old_key{.key = "old", .fingerprint = "a", .status = 202, .body = "{}"};
  IdempotencyRecord new_key = old_key;
  new_key.key = "new";
  {
    auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary, {.clock = &clock, .idempotency_window_ms = kHour});
    std::vector<Event> none;
    ASSERT_TRUE(store->AppendEvents(none, {}, &old_key).ok());
    clock.Advance(kHour / 2);
    ASSERT_TRUE(store->PutEntities({}, &new_key).ok());
    clock.Advance(kHour / 2);  // "old" is exactly an hour old: still kept
    EXPECT_TRUE(store->GetIdempotencyRecord("old")->has_value());
    IdempotencyKeys keys(store.get());
    EXPECT_EQ(keys.Begin("old", "a")->outcome, IdempotencyKeys::Outcome::kReplay);
    clock.Advance(1);
    EXPECT_FALSE(store->GetIdempotencyRecord("old")->has_value());
    EXPECT_EQ(keys.Begin("old", "b")->outcome, IdempotencyKeys::Outcome::kFirst) << "an expired key is new again";
    EXPECT_TRUE(store->GetIdempotencyRecord("new")->has_value());
    ASSERT_TRUE(store->PruneIdempotencyRecords().ok());
  }
  // Reopened with a window that keeps everything on read, so what is absent now
  // was removed from disk by the pruning.
  auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary,
                               {.clock = &clock, .idempotency_window_ms = 1000 * kHour});
  EXPECT_FALSE(store->GetIdempotencyRecord("old")->has_value());
  EXPECT_TRUE(store->GetIdempotencyRecord("new")->has_value());
}

TEST(IdempotencyKeysTest, TheWindowIsAServerSettingOfOneSecondToThirtyDays) {
  auto c = Config::FromTomlString("[server]\nidempotency_window_seconds = 3600\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server.idempotency_window_seconds, 3600);
  EXPECT_EQ(StoreOptionsFor(*c, nullptr).idempotency_window_ms, 3'600'000);
  EXPECT_EQ(Config().server.idempotency_window_seconds, 86400);
  EXPECT_FALSE(Config::FromTomlString("[server]\nidempotency_window_seconds = 0\n").ok());
  EXPECT_FALSE(Config::FromTomlString("[server]\nidempotency_window_seconds = 2592001\n").ok());
  EXPECT_FALSE(Config::FromTomlString("[server]\nidempotency_window_s = 60\n").ok()) << "unknown keys are refused";
}

TEST(IdempotencyKeysTest, ABatchBodyMayCarryTheKeyAsAString) {
  std::vector<RawEvent> events;
  std::optional<std::string> key;
  RequestError e = ParseFeedbackRequest(
      R"({"idempotency_key":"abc","events":[{"viewer_id":"u","entity_id":"i","action":"click"}]})", 10, &events, &key);
  ASSERT_TRUE(e.ok()) << e.message;
  EXPECT_EQ(key, "abc");
  EXPECT_EQ(events.size(), 1u);
  key.reset();
  std::vector<RawEntity> entities;
  e = ParseEntitiesRequest(R"({"entities":[],"idempotency_key":"e-1"})", &entities, &key);
  ASSERT_TRUE(e.ok()) << e.message;
  EXPECT_EQ(key, "e-1");
  key.reset();
  e = ParseFeedbackRequest(R"({"events":[]})", 10, &events, &key);
  EXPECT_TRUE(e.ok());
  EXPECT_FALSE(key.has_value());
  e = ParseFeedbackRequest(R"({"events":[],"idempotency_key":7})", 10, &events, &key);
  EXPECT_EQ(e.status, 422);
  EXPECT_NE(e.message.find("idempotency_key must be a string"), std::string::npos) << e.message;
}

}  // namespace
}  // namespace affinity
