#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "base/block_pipe.h"
#include "base/config.h"
#include "base/file_lock.h"
#include "base/json_writer.h"
#include "base/poller.h"
#include "base/strings.h"
#include "events/event.h"
#include "testing/temp_dir.h"
#include "config/config.h"
#include "ranking/ranker_options.h"

namespace affinity {
namespace {

TEST(BlockPipeTest, AppliesEveryItemInPushOrderOnItsThreadAndCloseWaitsForThem) {
  std::vector<int> applied;  // written only on the pipe's thread until Close returns
  std::thread::id applier;
  {
    // Small blocks and two in flight: the producer runs ahead and waits.
    BlockPipe<int> pipe(
        [&](std::vector<int>& block) {
          applier = std::this_thread::get_id();
          applied.insert(applied.end(), block.begin(), block.end());
        },
        /*block_size=*/7, /*in_flight=*/2);
    for (int i = 0; i < 10'000; ++i) pipe.Push(i);
    pipe.Close();
    ASSERT_EQ(applied.size(), 10'000u) << "Close returns once everything pushed is applied";
    pipe.Close();  // a second Close changes nothing
  }
  for (int i = 0; i < 10'000; ++i) ASSERT_EQ(applied[i], i);
  EXPECT_NE(applier, std::this_thread::get_id());
  // The destructor applies a last, partial block.
  std::vector<int> last;
  {
    BlockPipe<int> pipe([&](std::vector<int>& block) { last.insert(last.end(), block.begin(), block.end()); }, 100);
    for (int i = 0; i < 5; ++i) pipe.Push(i);
  }
  EXPECT_EQ(last, (std::vector<int>{0, 1, 2, 3, 4}));
  // A producer's own work on each whole block, on its thread, before the pipe's.
  std::vector<int> prepared_then_applied;
  std::vector<std::thread::id> preparers;
  {
    BlockPipe<int> pipe([&](std::vector<int>& block) {
      prepared_then_applied.insert(prepared_then_applied.end(), block.begin(), block.end());
    }, 4, 2, [&](std::vector<int>& block) {
      preparers.push_back(std::this_thread::get_id());
      for (int& x : block) x *= 10;
    });
    for (int i = 0; i < 10; ++i) pipe.Push(i);
  }
  EXPECT_EQ(prepared_then_applied, (std::vector<int>{0, 10, 20, 30, 40, 50, 60, 70, 80, 90}));
  EXPECT_EQ(preparers, std::vector<std::thread::id>(3, std::this_thread::get_id())) << "blocks of 4, 4 and 2";
}

TEST(FileLockTest, ASecondTryOnAHeldLockFailsNamingThePath) {
  testing::TempDir dir;
  const std::string path = dir / "batch.lock";
  auto first = FileLock::Acquire(path, FileLock::Wait::kTry);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->held());
  auto second = FileLock::Acquire(path, FileLock::Wait::kTry);
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(absl::IsUnavailable(second.status())) << second.status();
  EXPECT_NE(second.status().message().find(path), std::string::npos) << second.status();
}

TEST(FileLockTest, IsReleasedWhenItsHolderIsDestroyed) {
  testing::TempDir dir;
  const std::string path = dir / "LOCK";
  {
    auto held = FileLock::Acquire(path, FileLock::Wait::kBlock);
    ASSERT_TRUE(held.ok()) << held.status();
    ASSERT_FALSE(FileLock::Acquire(path, FileLock::Wait::kTry).ok());
  }
  auto again = FileLock::Acquire(path, FileLock::Wait::kTry);
  EXPECT_TRUE(again.ok()) << again.status();
}

TEST(FileLockTest, AMovedLockStaysHeldUntilItsNewOwnerIsDestroyed) {
  testing::TempDir dir;
  const std::string path = dir / "LOCK";
  FileLock owner;
  EXPECT_FALSE(owner.held());
  {
    auto taken = FileLock::Acquire(path, FileLock::Wait::kTry);
    ASSERT_TRUE(taken.ok());
    owner = *std::move(taken);
  }
  EXPECT_TRUE(owner.held());
  EXPECT_FALSE(FileLock::Acquire(path, FileLock::Wait::kTry).ok());
  owner = FileLock();
  EXPECT_TRUE(FileLock::Acquire(path, FileLock::Wait::kTry).ok());
}

TEST(FileLockTest, AFileThatCannotBeCreatedIsAnErrorNamingIt) {
  testing::TempDir dir;
  const std::string path = dir / "missing/LOCK";
  auto lock = FileLock::Acquire(path, FileLock::Wait::kBlock);
  ASSERT_FALSE(lock.ok());
  EXPECT_NE(lock.status().message().find("cannot open " + path), std::string::npos) << lock.status();
}

TEST(JsonWriterTest, EscapesControlCharactersAndQuotes) {
  JsonWriter w;
  w.BeginObject().Key("a\"b").String("line\nbreak\t\x01").Key("n").Int(-3).EndObject();
  EXPECT_EQ(w.str(), "{\"a\\\"b\":\"line\\nbreak\\t\\u0001\",\"n\":-3}");
}

TEST(JsonWriterTest, WritesNonFiniteNumbersAsNull) {
  JsonWriter w;
  w.BeginArray().Double(1.5).Double(std::nan("")).EndArray();
  EXPECT_EQ(w.str(), "[1.5,null]");
}

TEST(JsonWriterTest, ErrorBodyHasCodeAndMessage) {
  EXPECT_EQ(JsonError("invalid", "k must be positive"), "{\"error\":{\"code\":\"invalid\",\"message\":\"k must be positive\"}}");
}

TEST(StringsTest, SplitKeepsEmptyFields) {
  auto f = Split("a\t\tc", '\t');
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f[1], "");
}

TEST(StringsTest, ParseNumbersRejectsTrailingGarbage) {
  EXPECT_EQ(ParseInt64("42"), 42);
  EXPECT_FALSE(ParseInt64("42x"));
  EXPECT_FALSE(ParseInt64(""));
  EXPECT_DOUBLE_EQ(*ParseDouble("2.5"), 2.5);
  EXPECT_FALSE(ParseDouble("nope"));
}

TEST(StringsTest, Crc32cMatchesKnownVector) {
  // RFC 3720 test vector: 32 bytes of zeros.
  std::string zeros(32, '\0');
  EXPECT_EQ(Crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
}

TEST(ConfigTest, ReadsTomlAndValidates) {
  auto c = Config::FromTomlString("[serving]\ndeadline_ms = 20\n[actions]\nhide = -9.0\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->serving.deadline_ms, 20);
  EXPECT_DOUBLE_EQ(c->actions.hide, -9.0);
  EXPECT_EQ(c->serving.per_creator_cap, 3);
}

TEST(ConfigTest, RejectsOutOfRangeValuesWithTheirName) {
  auto c = Config::FromTomlString("[server]\nport = 70000\n");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("server.port"), std::string::npos);
}

TEST(ConfigTest, SessionAndRankerSettingsAreReadAndBoundsNamed) {
  auto c = Config::FromTomlString(
      "[serving]\ncoeng_session_weight = 0\n[batch]\nsession_window = 3\nsession_neighbors = 0\n"
      "[ranker]\ncolsample_bynode = 0.5\ntraining_slices = 2\nrandom_slices = 0\nrandom_slice_groups = 0.3\n"
      "monotone = false\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->serving.coeng_session_weight, 0.0);
  EXPECT_EQ(c->batch.session_window, 3);
  EXPECT_EQ(c->batch.session_neighbors, 0);
  EXPECT_EQ(c->ranker.colsample_bynode, 0.5);
  EXPECT_EQ(c->ranker.training_slices, 2);
  EXPECT_EQ(c->ranker.random_slices, 0);
  EXPECT_EQ(c->ranker.random_slice_groups, 0.3);
  EXPECT_FALSE(c->ranker.monotone);
  const std::pair<const char*, const char*> bad[] = {
      {"[batch]\nsession_window = 0\n", "batch.session_window"},
      {"[batch]\nsession_gap_hours = 0\n", "batch.session_gap_hours"},
      {"[serving]\ncoeng_session_weight = -1\n", "serving.coeng_session_weight"},
      {"[ranker]\ncolsample_bynode = 0\n", "ranker.colsample_bynode"},
      {"[ranker]\ntraining_slices = 8\n", "ranker.training_slices"},
      {"[ranker]\nrandom_slices = -1\n", "ranker.random_slices"},
      {"[ranker]\nrandom_slice_groups = 0\n", "ranker.random_slice_groups"},
      {"[ranker]\nmonotone = 1\n", "ranker.monotone"}};
  for (const auto& [toml, key] : bad) {
    auto r = Config::FromTomlString(toml);
    ASSERT_FALSE(r.ok()) << toml;
    EXPECT_NE(r.status().message().find(key), std::string::npos) << r.status().message();
  }
}

TEST(ConfigTest, EventRetentionIsReadAndMustNotBeNegative) {
  EXPECT_EQ(Config().events.retention_hours, 0);  // kept forever by default
  auto c = Config::FromTomlString("[events]\nretention_hours = 720\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->events.retention_hours, 720);
  auto bad = Config::FromTomlString("[events]\nretention_hours = -1\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("events.retention_hours"), std::string::npos);
}

TEST(ConfigTest, RefusesUnknownSettingsAndValuesOfTheWrongTypeByName) {
  auto typo = Config::FromTomlString("[serving]\ndeadline = 30\n");
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.status().message().find("unknown setting serving.deadline; did you mean serving.deadline_ms?"),
            std::string::npos)
      << typo.status();
  auto far = Config::FromTomlString("[serving]\ncolour = 1\n");  // nothing close: no guess
  ASSERT_FALSE(far.ok());
  EXPECT_EQ(far.status().message().find("did you mean"), std::string::npos) << far.status();
  auto section = Config::FromTomlString("[servng]\ndeadline_ms = 30\n");
  ASSERT_FALSE(section.ok());
  EXPECT_NE(section.status().message().find("servng.deadline_ms"), std::string::npos) << section.status();
  auto loose = Config::FromTomlString("deadline_ms = 30\n");
  ASSERT_FALSE(loose.ok());
  EXPECT_NE(loose.status().message().find("'deadline_ms' is not a known section"), std::string::npos) << loose.status();
  for (const auto& [toml, message] : std::vector<std::pair<std::string, std::string>>{
           {"[serving]\ndeadline_ms = \"30\"\n", "serving.deadline_ms must be an integer"},
           {"[serving]\ndeadline_ms = 30.5\n", "serving.deadline_ms must be an integer"},
           {"[ranker]\nauto_promote = 1\n", "ranker.auto_promote must be true or false"},
           {"[ranker]\nobjective = 3\n", "ranker.objective must be a string"},
           {"[ranker]\neta = \"0.1\"\n", "ranker.eta must be a number"},
           {"[server]\nport = 99999999999\n", "server.port must be an integer"}}) {
    auto r = Config::FromTomlString(toml);
    ASSERT_FALSE(r.ok()) << toml;
    EXPECT_NE(r.status().message().find(message), std::string::npos) << r.status();
  }
  // An integer where a number is expected is a number.
  auto eta = Config::FromTomlString("[ranker]\neta = 1\n[audit]\nretention_hours = 0\n");
  ASSERT_TRUE(eta.ok()) << eta.status();
  EXPECT_EQ(eta->ranker.eta, 1.0);
  EXPECT_EQ(eta->audit.retention_hours, 0);
  EXPECT_FALSE(Config::FromTomlString("[audit]\nretention_hours = -1\n").ok());
}

TEST(ConfigTest, EnumeratedSettingsAreReadByTheirSpellingAndAnyOtherIsRefusedNamingTheChoices) {
  auto c = Config::FromTomlString(
      "[ranker]\nrollout = \"direct\"\nstream_inputs = \"off\"\n[serving]\nattribution_method = \"treeshap\"\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ranker.rollout, RolloutMode::kDirect);
  EXPECT_EQ(c->ranker.stream_inputs, StreamInputs::kOff);
  EXPECT_EQ(c->serving.attribution_method, AttributionMethod::kTreeShap);
  EXPECT_EQ(Config().ranker.rollout, RolloutMode::kCanary);
  EXPECT_EQ(Config().ranker.stream_inputs, StreamInputs::kAuto);
  EXPECT_EQ(Config().serving.attribution_method, AttributionMethod::kSaabas);
  auto message = [](const std::string& toml) { return std::string(Config::FromTomlString(toml).status().message()); };
  EXPECT_EQ(message("[ranker]\nrollout = \"slow\"\n"), "config: ranker.rollout must be canary or direct");
  EXPECT_EQ(message("[ranker]\nstream_inputs = \"yes\"\n"), "config: ranker.stream_inputs must be auto, on or off");
  EXPECT_EQ(message("[serving]\nattribution_method = \"lime\"\n"),
            "config: serving.attribution_method must be treeshap or saabas");
  EXPECT_EQ(message("[ranker]\nrollout = 3\n"), "config: ranker.rollout must be a string");
}

TEST(EnumNamesTest, EveryStateParsesBackFromItsName) {
  for (RolloutMode m : {RolloutMode::kCanary, RolloutMode::kDirect})
    EXPECT_EQ(kRolloutModeNames.Parse(RolloutModeName(m)), m);
  for (StreamInputs s : {StreamInputs::kAuto, StreamInputs::kOn, StreamInputs::kOff})
    EXPECT_EQ(kStreamInputsNames.Parse(StreamInputsName(s)), s);
  EXPECT_EQ(AttributionMethodName(AttributionMethod::kSaabas), "saabas");
  EXPECT_EQ(kAttributionMethodNames.Parse("treeshap"), AttributionMethod::kTreeShap);
  EXPECT_EQ(kRolloutModeNames.Parse("Canary"), std::nullopt);
  EXPECT_EQ(kStreamInputsNames.Choices(), "auto, on or off");
}

TEST(ConfigTest, RejectsMalformedToml) { EXPECT_FALSE(Config::FromTomlString("[serving\n").ok()); }

TEST(ConfigTest, MalformedTomlIsNamedWithItsLineAndColumn) {
  auto c = Config::FromTomlString("[serving]\ndeadline_ms = 50\nmax_candidates = = 3\n");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("line 3, column"), std::string::npos) << c.status();
}

TEST(StringsTest, NearestNameSuggestsWithinTheEditBudget) {
  const std::vector<std::string_view> known = {"viewer_id", "target", "k", "seeds"};
  EXPECT_EQ(NearestName("kk", known), "k");
  EXPECT_EQ(NearestName("viewerid", known), "viewer_id");
  EXPECT_EQ(NearestName("completely_else", known), "");
  EXPECT_EQ(NearestName("sed", known, 1), "");
}

TEST(EventTest, EncodingRoundTrips) {
  Event e;
  e.ts = 123456789;
  e.viewer = Ref(Kind::kUser, 7);
  e.entity = Ref(Kind::kItem, 99);
  e.action = Action::kLike;
  e.weight = 2.5f;
  e.context = "{\"request_id\":\"q_1\"}";
  Event d;
  ASSERT_TRUE(DecodeEvent(EncodeEvent(e), &d));
  EXPECT_EQ(d.ts, e.ts);
  EXPECT_EQ(d.viewer, e.viewer);
  EXPECT_EQ(d.entity, e.entity);
  EXPECT_EQ(d.action, Action::kLike);
  EXPECT_FLOAT_EQ(d.weight, 2.5f);
  EXPECT_EQ(d.context, e.context);
  EXPECT_EQ(d.request_id, "q_1");  // read out of the context as it is decoded
}

TEST(EventTest, TheRequestIdIsTheContextsStringRequestIdAndNothingElse) {
  EXPECT_EQ(RequestIdInContext(R"({"request_id":"q_7","page":2})"), "q_7");
  EXPECT_EQ(RequestIdInContext(R"({"page":2})"), "");
  EXPECT_EQ(RequestIdInContext(R"({"request_id":17})"), "");
  EXPECT_EQ(RequestIdInContext(R"({"note":"request_id"})"), "");
  EXPECT_EQ(RequestIdInContext(""), "");
  EXPECT_EQ(RequestIdInContext("request_id"), "");  // not JSON
}

TEST(EventTest, DecodeRejectsTruncatedRecords) {
  Event e;
  e.context = "abc";
  std::string bytes = EncodeEvent(e);
  Event d;
  EXPECT_FALSE(DecodeEvent(std::string_view(bytes).substr(0, bytes.size() - 1), &d));
}

TEST(EventTest, ParsesEveryContractAction) {
  for (const char* a : {"impression", "click", "like", "play", "follow", "unfollow", "hide"})
    EXPECT_TRUE(ParseAction(a)) << a;
  EXPECT_FALSE(ParseAction("teleport"));
}

TEST(RefTest, PacksKindAndId) {
  Ref r(Kind::kCreator, 12345);
  EXPECT_EQ(r.kind(), Kind::kCreator);
  EXPECT_EQ(r.id(), 12345u);
  EXPECT_FALSE(Ref().valid());
}

}  // namespace
}  // namespace affinity

namespace affinity {
namespace {

TEST(PollerTest, AnErrorIsClearedByTheNextSuccessfulRefreshEvenWithoutAChange) {
  std::vector<absl::StatusOr<bool>> outcomes = {true, absl::DataLossError("bad file"), false, true};
  size_t next = 0;
  Poller poller(1000, [&] { return outcomes[next++]; });
  EXPECT_TRUE(*poller.RunOnce());
  EXPECT_FALSE(poller.RunOnce().ok());
  EXPECT_EQ(poller.last_error(), "bad file");
  EXPECT_FALSE(*poller.RunOnce());
  EXPECT_EQ(poller.last_error(), "");
  EXPECT_TRUE(*poller.RunOnce());
  EXPECT_EQ(poller.changes(), 2u);
}

TEST(PollerTest, RefreshesInTheBackgroundUntilStopped) {
  std::atomic<int> calls{0};
  Poller poller(5, [&]() -> absl::StatusOr<bool> {
    ++calls;
    return true;
  });
  poller.Start();
  for (int i = 0; i < 2000 && calls.load() < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  poller.Stop();
  const int after_stop = calls.load();
  EXPECT_GE(after_stop, 3);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_EQ(calls.load(), after_stop);
}

}  // namespace
}  // namespace affinity
