// Exactly-once writes end to end: a real server, real HTTP. A batch retried
// with its Idempotency-Key is stored once and answered with its first response
// (also after a kill -9 and a restart on the same data dir), a reused key with
// another body is refused, the key may travel in the body, and concurrent
// requests with one key apply it once.
#include <atomic>
#include <cstdio>
#include <fstream>
#include <thread>
#include <vector>

#include "integration/server_fixture.h"

namespace affinity {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

class IdempotencyTest : public ServerTest {
 protected:
  static std::string Batch(const std::string& viewer, const std::vector<std::string>& items) {
    std::string body = R"({"events":[)";
    for (size_t i = 0; i < items.size(); ++i)
      body += std::string(i ? "," : "") + R"({"viewer_id":")" + viewer + R"(","entity_id":")" + items[i] +
              R"(","action":"click"})";
    return body + "]}";
  }
  HttpResult PostKeyed(const std::string& path, const std::string& body, const std::string& key) {
    return HttpCall(port(), "POST", path, body, Headers{{"Idempotency-Key", key}});
  }
  // The events the log holds for a viewer (GET /affinity/viewers/{id}/events).
  size_t StoredEvents(const std::string& viewer) {
    auto r = Get(port(), "/affinity/viewers/" + viewer + "/events?limit=100");
    if (r.status == 404) return 0;  // never stored: not even registered
    EXPECT_EQ(r.status, 200) << r.body;
    return Json(r.body)["events"].get_array().size();
  }
  int64_t StatsEvents() { return int64_t(Json(Get(port(), "/admin/stats").body)["events"]); }
  void Restart(const std::vector<std::string>& extra = {}, bool kill9 = false) {
    if (kill9) server_->Kill9();
    server_.reset();
    server_ = std::make_unique<ServerProcess>(dir_ / "data", extra);
    ASSERT_TRUE(server_->running()) << server_->log();
  }
};

TEST_F(IdempotencyTest, ARetriedFeedbackBatchIsStoredOnceAndAnsweredWithTheFirstResponse) {
  const std::string body = Batch("idem-v1", {"i1", "i2", "i3"});
  const int64_t before = StatsEvents();
  auto first = PostKeyed("/affinity/feedback", body, "retry-me-1");
  ASSERT_EQ(first.status, 202) << first.body;
  EXPECT_EQ(first.body, R"({"accepted":3})");
  EXPECT_EQ(first.Header("Idempotent-Replayed"), "");
  for (int retry = 0; retry < 3; ++retry) {
    auto again = PostKeyed("/affinity/feedback", body, "retry-me-1");
    EXPECT_EQ(again.status, 202) << again.body;
    EXPECT_EQ(again.body, first.body);
    EXPECT_EQ(again.Header("Idempotent-Replayed"), "true");
  }
  EXPECT_EQ(StoredEvents("idem-v1"), 3u);
  EXPECT_EQ(StatsEvents(), before + 3);
  const std::string metrics = Get(port(), "/metrics").body;
  EXPECT_NE(metrics.find("affinity_idempotent_replays_total{route=\"feedback\"} 3"), std::string::npos)
      << metrics.substr(0, 2000);
}

TEST_F(IdempotencyTest, RequestsWithoutAKeyAreAppliedEachTime) {
  const std::string body = Batch("idem-v2", {"i1", "i2"});
  for (int i = 0; i < 2; ++i) {
    auto r = Post(port(), "/affinity/feedback", body);
    ASSERT_EQ(r.status, 202) << r.body;
    EXPECT_EQ(r.Header("Idempotent-Replayed"), "");
  }
  EXPECT_EQ(StoredEvents("idem-v2"), 4u);
}

TEST_F(IdempotencyTest, AnAcknowledgedKeySurvivesKill9AndItsRetryIsNotStoredAgain) {
  const std::string body = Batch("idem-v3", {"i4", "i5"});
  auto first = PostKeyed("/affinity/feedback", body, "crash-1");
  ASSERT_EQ(first.status, 202) << first.body;
  Restart({}, /*kill9=*/true);
  auto retry = PostKeyed("/affinity/feedback", body, "crash-1");
  EXPECT_EQ(retry.status, 202) << retry.body;
  EXPECT_EQ(retry.body, first.body);
  EXPECT_EQ(retry.Header("Idempotent-Replayed"), "true");
  EXPECT_EQ(StoredEvents("idem-v3"), 2u);
}

// The measured problem: batches in flight at a kill -9 may be stored without
// their 202, and a client that retries them stored them twice. With keys, every
// batch retried after the restart is stored exactly once.
TEST_F(IdempotencyTest, BatchesInFlightAtAKill9AreStoredOnceWhenRetriedWithTheirKeys) {
  constexpr int kBatches = 60;
  const std::vector<std::string> items = {"i1", "i2", "i3", "i4", "i5"};
  auto body = [&](int b) { return Batch("kill-v" + std::to_string(b), items); };
  auto key = [](int b) { return "kill-k" + std::to_string(b); };
  std::vector<int> first_status(kBatches, 0);
  std::atomic<int> answered{0};
  std::vector<std::thread> clients;
  const int p = port();
  for (int b = 0; b < kBatches; ++b)
    clients.emplace_back([&, b] {
      first_status[size_t(b)] =
          HttpCall(p, "POST", "/affinity/feedback", body(b), Headers{{"Idempotency-Key", key(b)}}).status;
      answered++;
    });
  while (answered.load() < 10) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  server_->Kill9();  // while the rest are in flight
  for (auto& t : clients) t.join();
  Restart();
  int acknowledged = 0, replayed = 0, stored_without_ack = 0;
  for (int b = 0; b < kBatches; ++b) {
    auto retry = PostKeyed("/affinity/feedback", body(b), key(b));
    ASSERT_EQ(retry.status, 202) << retry.body;
    const bool was_acked = first_status[size_t(b)] == 202;
    const bool was_replayed = retry.Header("Idempotent-Replayed") == "true";
    acknowledged += was_acked;
    replayed += was_replayed;
    stored_without_ack += was_replayed && !was_acked;
    if (was_acked) EXPECT_TRUE(was_replayed) << "batch " << b << ": acknowledged, so its key was stored with it";
    EXPECT_EQ(StoredEvents("kill-v" + std::to_string(b)), items.size()) << "batch " << b;
  }
  RecordProperty("acknowledged_before_kill", acknowledged);
  RecordProperty("stored_without_their_202", stored_without_ack);
  RecordProperty("replayed_after_restart", replayed);
  std::printf("[ figures  ] %d of %d batches acknowledged before the kill -9; %d stored without their 202; "
              "%d retries replayed, %d applied at the retry; every batch stored once\n",
              acknowledged, kBatches, stored_without_ack, replayed, kBatches - replayed);
  EXPECT_GE(acknowledged, 10);
}

TEST_F(IdempotencyTest, AReusedKeyWithADifferentRequestIsRefusedAndStoresNothing) {
  ASSERT_EQ(PostKeyed("/affinity/feedback", Batch("idem-v4", {"i1"}), "reused").status, 202);
  auto other = PostKeyed("/affinity/feedback", Batch("idem-v4", {"i2"}), "reused");
  EXPECT_EQ(other.status, 422) << other.body;
  EXPECT_EQ(ErrorCode(other.body), "idempotency_key_reused");
  auto elsewhere = PostKeyed("/affinity/entities", R"({"entities":[{"id":"idem-i4","kind":"item"}]})", "reused");
  EXPECT_EQ(elsewhere.status, 422) << elsewhere.body;
  EXPECT_EQ(ErrorCode(elsewhere.body), "idempotency_key_reused");
  EXPECT_EQ(StoredEvents("idem-v4"), 1u);
  EXPECT_EQ(Get(port(), "/affinity/entities/idem-i4").status, 404);
}

TEST_F(IdempotencyTest, TheKeyMayTravelInTheBodyAndMustAgreeWithTheHeader) {
  const std::string body = R"({"idempotency_key":"in-body-1",)" + Batch("idem-v5", {"i1", "i2"}).substr(1);
  auto first = Post(port(), "/affinity/feedback", body);
  ASSERT_EQ(first.status, 202) << first.body;
  auto again = Post(port(), "/affinity/feedback", body);
  EXPECT_EQ(again.status, 202);
  EXPECT_EQ(again.Header("Idempotent-Replayed"), "true");
  auto same = PostKeyed("/affinity/feedback", body, "in-body-1");  // both, agreeing
  EXPECT_EQ(same.Header("Idempotent-Replayed"), "true");
  auto differ = PostKeyed("/affinity/feedback", body, "in-header-1");
  EXPECT_EQ(differ.status, 422) << differ.body;
  EXPECT_EQ(ErrorCode(differ.body), "invalid");
  EXPECT_NE(differ.body.find("differ"), std::string::npos) << differ.body;
  EXPECT_EQ(StoredEvents("idem-v5"), 2u);
}

TEST_F(IdempotencyTest, AKeyMustBeOneTo255PrintableAsciiCharacters) {
  const std::string body = Batch("idem-v6", {"i1"});
  for (const std::string& bad : {std::string(256, 'k'), std::string("caf\xc3\xa9")}) {
    auto r = PostKeyed("/affinity/feedback", body, bad);
    EXPECT_EQ(r.status, 422) << r.body;
    EXPECT_NE(r.body.find("Idempotency-Key"), std::string::npos) << r.body;
  }
  auto empty_in_body = Post(port(), "/affinity/feedback", R"({"idempotency_key":"","events":[]})");
  EXPECT_EQ(empty_in_body.status, 422) << empty_in_body.body;
  EXPECT_EQ(StoredEvents("idem-v6"), 0u);
  EXPECT_EQ(PostKeyed("/affinity/feedback", body, std::string(255, 'k')).status, 202);
}

TEST_F(IdempotencyTest, ARetriedEntitiesBatchIsNotUpsertedAgain) {
  const std::string body = R"({"entities":[{"id":"idem-c1","kind":"creator"},)"
                           R"({"id":"idem-i1","kind":"item","creator_id":"idem-c1","labels":["first"]}]})";
  auto first = PostKeyed("/affinity/entities", body, "import-chunk-1");
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.body, R"({"upserted":2})");
  // Changed since: a second upsert of the batch would put the label back.
  auto patched = HttpCall(port(), "PATCH", "/affinity/entities/idem-i1", R"({"labels":["second"]})");
  ASSERT_EQ(patched.status, 200) << patched.body;
  auto retry = PostKeyed("/affinity/entities", body, "import-chunk-1");
  EXPECT_EQ(retry.status, 200);
  EXPECT_EQ(retry.body, first.body);
  EXPECT_EQ(retry.Header("Idempotent-Replayed"), "true");
  auto entity = Json(Get(port(), "/affinity/entities/idem-i1").body);
  EXPECT_EQ(std::string_view(entity["labels"].at(0)), "second") << "the retry was not applied";
  // The body form, for entities too.
  const std::string in_body = R"({"idempotency_key":"import-chunk-2","entities":[{"id":"idem-u1","kind":"user"}]})";
  ASSERT_EQ(Post(port(), "/affinity/entities", in_body).status, 200);
  EXPECT_EQ(Post(port(), "/affinity/entities", in_body).Header("Idempotent-Replayed"), "true");
}

TEST_F(IdempotencyTest, ConcurrentRequestsWithOneKeyStoreTheBatchOnce) {
  const std::string body = Batch("idem-v7", {"i1", "i2", "i3", "i4"});
  constexpr int kClients = 8;
  std::vector<HttpResult> results(kClients);
  std::atomic<bool> go{false};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c)
    clients.emplace_back([&, c] {
      while (!go.load()) std::this_thread::yield();
      results[size_t(c)] = PostKeyed("/affinity/feedback", body, "together");
    });
  go = true;
  for (auto& t : clients) t.join();
  int applied = 0, replayed = 0, in_flight = 0;
  for (const auto& r : results) {
    if (r.status == 202 && r.Header("Idempotent-Replayed").empty()) ++applied;
    else if (r.status == 202) ++replayed;
    else if (r.status == 409 && ErrorCode(r.body) == "idempotency_key_in_flight" && r.Header("Retry-After") == "1")
      ++in_flight;
    else ADD_FAILURE() << r.status << " " << r.body;
  }
  EXPECT_EQ(applied, 1);
  EXPECT_EQ(applied + replayed + in_flight, kClients);
  EXPECT_EQ(StoredEvents("idem-v7"), 4u);
}

TEST_F(IdempotencyTest, AKeyOlderThanTheWindowIsNewAgain) {
  std::ofstream(dir_ / "window.toml") << "[server]\nidempotency_window_seconds = 1\n";
  Restart({"--config", dir_ / "window.toml"});
  const std::string body = Batch("idem-v8", {"i1"});
  ASSERT_EQ(PostKeyed("/affinity/feedback", body, "short-lived").status, 202);
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));  // past the 1 s window
  auto later = PostKeyed("/affinity/feedback", body, "short-lived");
  EXPECT_EQ(later.status, 202) << later.body;
  EXPECT_EQ(later.Header("Idempotent-Replayed"), "");
  EXPECT_EQ(StoredEvents("idem-v8"), 2u);
}

}  // namespace
}  // namespace affinity
