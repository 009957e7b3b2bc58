// Operating the service, end to end: the built-in batch schedule, the batch
// lock that keeps two batches from running on one data dir, and the operator
// page rendered by a real headless browser.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <png.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "integration/server_fixture.h"

namespace affinity {
namespace {

using OperationsTest = ServerTest;

TEST_F(OperationsTest, ServeBatchEveryRunsTheBatchOnItsScheduleAndReportsEachRun) {
  server_.reset();
  server_ = std::make_unique<ServerProcess>(dir_ / "data", std::vector<std::string>{"--batch-every", "1s"});
  ASSERT_TRUE(server_->running()) << server_->log();
  const std::string first{std::string_view(Json(Get(port(), "/admin/stats").body)["snapshot"])};
  std::string snapshot = first, outcome;
  int64_t runs = 0;
  for (int i = 0; i < 300 && (runs < 2 || snapshot == first); ++i) {  // up to 60 s: slow builds (sanitizers) batch slowly
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto stats = Json(Get(port(), "/admin/stats").body);
    snapshot = std::string(std::string_view(stats["snapshot"]));
    runs = int64_t(stats["batch_schedule"]["runs"]);
    outcome = std::string(std::string_view(stats["batch_schedule"]["last_outcome"]));
  }
  EXPECT_GE(runs, 2);
  EXPECT_EQ(outcome, "ok");
  EXPECT_NE(snapshot, first) << "the server swapped in no snapshot of the scheduled batch";
  auto stats = Json(Get(port(), "/admin/stats").body);
  EXPECT_EQ(double(stats["batch_schedule"]["every_seconds"]), 1.0);
  EXPECT_GT(int64_t(stats["batch_schedule"]["next_run_ms"]), 0);
  EXPECT_GT(double(stats["batch_schedule"]["last_duration_seconds"]), 0.0);
  const std::string metrics = Get(port(), "/metrics").body;
  EXPECT_NE(metrics.find("affinity_batch_runs{outcome=\"ok\"}"), std::string::npos);
  EXPECT_NE(metrics.find("affinity_batch_next_run_timestamp_seconds"), std::string::npos);
}

TEST_F(OperationsTest, ABadScheduleIsRefusedWithTheReason) {
  auto r = RunAffinity({"serve", "--data", dir_ / "data", "--port", "0", "--batch-every", "hourly"}, 20);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("--batch-every: 'hourly' is not a duration"), std::string::npos) << r.output;
}

TEST_F(OperationsTest, AServerRestartsFromItsCheckpointPlusTheLogsTail) {
  // A checkpoint now, then three events past it.
  auto c = Post(port(), "/admin/checkpoint", "");
  ASSERT_EQ(c.status, 200) << c.body;
  const int64_t covered = int64_t(Json(c.body)["offset"]);
  EXPECT_GT(covered, 0);
  auto before = Json(Get(port(), "/admin/features/viewer_activity/u5").body);
  const int64_t events = int64_t(before["feature_vector"]["events"]);
  const int64_t follows = int64_t(before["feature_vector"]["follows"]);
  const int64_t hidden = int64_t(before["feature_vector"]["hidden"]);
  ASSERT_EQ(Post(port(), "/affinity/feedback",
                 R"({"events":[{"viewer_id":"u5","entity_id":"u9","action":"follow"},)"
                 R"({"viewer_id":"u5","entity_id":"i11","action":"hide"},)"
                 R"({"viewer_id":"u5","entity_id":"i12","action":"click"}]})")
                .status,
            202);
  // Killed: no last checkpoint; the restart reads the checkpoint and the tail.
  server_->Kill9();
  server_ = std::make_unique<ServerProcess>(dir_ / "data");
  ASSERT_TRUE(server_->running()) << server_->log();
  auto stats = Json(Get(port(), "/admin/stats").body);
  EXPECT_TRUE(bool(stats["live_state"]["load"]["from_checkpoint"])) << server_->log();
  EXPECT_EQ(int64_t(stats["live_state"]["load"]["replayed_events"]), 3);
  EXPECT_EQ(int64_t(stats["live_state"]["checkpoint"]["last"]["offset"]), covered);
  auto after = Json(Get(port(), "/admin/features/viewer_activity/u5").body);
  EXPECT_EQ(int64_t(after["feature_vector"]["events"]), events + 3);
  EXPECT_EQ(int64_t(after["feature_vector"]["follows"]), follows + 1);
  EXPECT_EQ(int64_t(after["feature_vector"]["hidden"]), hidden + 1);
  // A clean stop writes a last checkpoint: the next start replays nothing.
  server_->Stop(SIGTERM);
  server_ = std::make_unique<ServerProcess>(dir_ / "data");
  ASSERT_TRUE(server_->running()) << server_->log();
  stats = Json(Get(port(), "/admin/stats").body);
  EXPECT_TRUE(bool(stats["live_state"]["load"]["from_checkpoint"]));
  EXPECT_EQ(int64_t(stats["live_state"]["load"]["replayed_events"]), 0);
  EXPECT_EQ(int64_t(stats["live_state"]["checkpoint"]["last"]["offset"]), covered + 3);
  EXPECT_NE(Get(port(), "/metrics").body.find("affinity_live_state_checkpoint{field=\"load_from_checkpoint\"} 1"),
            std::string::npos);
  // A damaged checkpoint is refused with the reason and the whole log replayed.
  server_->Stop(SIGTERM);
  const std::string path = dir_ / "data/state/live.ckpt";
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(std::streamoff(std::filesystem::file_size(path) / 2));
    f.put('\x7f');
  }
  server_ = std::make_unique<ServerProcess>(dir_ / "data");
  ASSERT_TRUE(server_->running()) << server_->log();
  stats = Json(Get(port(), "/admin/stats").body);
  EXPECT_FALSE(bool(stats["live_state"]["load"]["from_checkpoint"]));
  EXPECT_EQ(int64_t(stats["live_state"]["load"]["replayed_events"]), covered + 3);
  EXPECT_NE(std::string_view(stats["live_state"]["load"]["checkpoint_refused"]).find("checksum"), std::string::npos);
  EXPECT_NE(server_->log().find("checkpoint not used, replaying the whole log"), std::string::npos) << server_->log();
  after = Json(Get(port(), "/admin/features/viewer_activity/u5").body);
  EXPECT_EQ(int64_t(after["feature_vector"]["follows"]), follows + 1);
  EXPECT_EQ(Get(port(), "/admin/checkpoint").status, 405);
}

TEST_F(OperationsTest, ABatchDoesNothingWhileAnotherRunsOnTheSameDataDir) {
  const std::string lock = dir_ / "data/batch.lock";
  const int fd = ::open(lock.c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);  // as a running batch holds it
  auto r = RunAffinity({"batch", "--data", dir_ / "data"}, 60);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("another `affinity batch` or `affinity backfill` is running"), std::string::npos) << r.output;
  r = RunAffinity({"backfill", "--data", dir_ / "data", "--group", "popularity"}, 60);  // nor a backfill
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("holds batch.lock"), std::string::npos) << r.output;
  ::close(fd);
  r = RunAffinity({"batch", "--data", dir_ / "data"}, 120);
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

// 12345 -> "12,345", as the page prints counts.
std::string Grouped(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// Runs headless Chromium (Debian's package, installed by `make deps`) on `url`
// with `args`; its exit code.
int Chromium(const std::string& profile, const std::vector<std::string>& args, const std::string& url,
             const std::string& stdout_path) {
  std::string cmd = "timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars "
                    "--user-data-dir='" + profile + "' --virtual-time-budget=8000";
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " '" + url + "' > '" + stdout_path + "' 2>/dev/null";
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F(OperationsTest, TheOperatorPageShowsLiveFiguresInAHeadlessBrowser) {
  ASSERT_EQ(std::system("command -v chromium > /dev/null"), 0) << "chromium is not installed: run `make deps`";
  ASSERT_EQ(Post(port(), "/admin/experiments",
                 R"({"id":"ui-exp","arms":[{"name":"control","weight":1},{"name":"treatment","weight":1}]})")
                .status,
            201);
  for (int v = 0; v < 40; ++v)
    ASSERT_EQ(Post(port(), "/affinity/query", R"({"viewer_id":"u)" + std::to_string(v) + R"(","k":5})").status, 200);
  auto stats = Json(Get(port(), "/admin/stats").body);
  const int64_t events = int64_t(stats["events"]);
  const std::string snapshot{std::string_view(stats["snapshot"])};
  const int64_t replayed = int64_t(stats["live_state"]["load"]["replayed_events"]);
  const std::string url = "http://127.0.0.1:" + std::to_string(port()) + "/admin/ui";
  // The DOM after the page's scripts ran against the live server.
  const std::string dom_path = dir_ / "dom.html";
  ASSERT_EQ(Chromium(dir_ / "profile", {"--dump-dom"}, url, dom_path), 0);
  std::stringstream ss;
  ss << std::ifstream(dom_path).rdbuf();
  const std::string dom = ss.str();
  EXPECT_NE(dom.find("id=\"health\" class=\"ok\">ready<"), std::string::npos) << dom.substr(0, 2000);
  EXPECT_NE(dom.find("id=\"events\">" + Grouped(events) + "<"), std::string::npos) << "events " << events;
  EXPECT_NE(dom.find("id=\"snapshot\">" + snapshot + "<"), std::string::npos) << snapshot;
  EXPECT_NE(dom.find("started by replaying " + Grouped(replayed) + " events"), std::string::npos) << replayed;
  EXPECT_NE(dom.find("no checkpoint yet"), std::string::npos);
  for (const char* g : {"viewer_embedding", "popularity", "engagement", "cohort"})
    EXPECT_NE(dom.find("data-group=\"" + std::string(g) + "\""), std::string::npos) << g;
  EXPECT_NE(dom.find("ui-exp"), std::string::npos);
  EXPECT_NE(dom.find("CTR [95 % CI]"), std::string::npos);
  EXPECT_NE(dom.find("no learned model is serving"), std::string::npos);  // the drift section, with the blend ranking
  EXPECT_EQ(dom.find("loading…<"), std::string::npos) << "a section never loaded";
  // A link to one audit record opens the page with that record shown.
  auto q = Json(Post(port(), "/affinity/query", R"({"viewer_id":"u3","k":3})").body);
  const std::string request_id{std::string_view(q["request_id"])};
  const std::string entity{std::string_view(q["results"].at(0)["entity_id"])};
  ASSERT_EQ(Chromium(dir_ / "profile", {"--dump-dom"}, url + "#audit=" + request_id, dom_path), 0);
  std::stringstream audit_dom;
  audit_dom << std::ifstream(dom_path).rdbuf();
  EXPECT_NE(audit_dom.str().find("\"entity_id\": \"" + entity + "\""), std::string::npos) << audit_dom.str().substr(0, 3000);
  // A screenshot, inspected: the right size, and far from blank.
  const std::string png_path = dir_ / "ui.png";
  ASSERT_EQ(Chromium(dir_ / "profile", {"--window-size=1280,1400", "--screenshot=" + png_path}, url, dir_ / "shot.log"),
            0);
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  ASSERT_TRUE(png_image_begin_read_from_file(&image, png_path.c_str())) << image.message;
  image.format = PNG_FORMAT_RGB;
  std::vector<unsigned char> pixels(PNG_IMAGE_SIZE(image));
  ASSERT_TRUE(png_image_finish_read(&image, nullptr, pixels.data(), 0, nullptr)) << image.message;
  EXPECT_EQ(image.width, 1280u);
  EXPECT_EQ(image.height, 1400u);
  const size_t n = size_t(image.width) * image.height;
  const unsigned char* bg = pixels.data() + (size_t(image.height - 1) * image.width) * 3;  // a bottom-left pixel
  size_t differ = 0;
  std::set<uint32_t> colours;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char* p = &pixels[i * 3];
    if (p[0] != bg[0] || p[1] != bg[1] || p[2] != bg[2]) ++differ;
    if (colours.size() < 5000) colours.insert(uint32_t(p[0]) << 16 | uint32_t(p[1]) << 8 | p[2]);
  }
  EXPECT_GT(double(differ) / double(n), 0.2) << "the screenshot is mostly background";
  EXPECT_GT(colours.size(), 50u) << "the screenshot has no text or figures";
  RecordProperty("screenshot_non_background_share", std::to_string(double(differ) / double(n)));
}

std::string CurrentSnapshot(const std::string& data) {
  std::ifstream in(data + "/snapshots/CURRENT");
  std::string v;
  in >> v;
  return v;
}

TEST_F(OperationsTest, BackfillRecomputesOneGroupAndPublishesItWithItsProvenance) {
  const std::string data = dir_ / "data";
  const std::string before = CurrentSnapshot(data);
  auto r = RunAffinity({"backfill", "--data", data, "--group", "popularity"}, 120);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("rows "), std::string::npos) << r.output;  // the check against the served version
  const std::string after = CurrentSnapshot(data);
  EXPECT_NE(after, before);
  // The server swaps it in; the backfilled group says so, the others keep theirs.
  std::string served;
  for (int i = 0; i < 150 && served != after; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    served = std::string(std::string_view(Json(Get(port(), "/admin/stats").body)["snapshot"]));
  }
  ASSERT_EQ(served, after);
  const std::string pop = Get(port(), "/admin/features/popularity/i1").body;
  EXPECT_NE(pop.find("backfill of popularity"), std::string::npos) << pop;
  EXPECT_NE(pop.find("replacing " + before), std::string::npos) << pop;
  const std::string graph = Get(port(), "/admin/features/graph/u1").body;
  EXPECT_NE(graph.find("batch/graph@" + before), std::string::npos) << graph;
}

TEST_F(OperationsTest, ABackfillOverANarrowWindowNeedsForce) {
  const std::string data = dir_ / "data";
  const std::string before = CurrentSnapshot(data);
  // One event's time: a window holding a handful of events changes most rows.
  auto events = Json(Get(port(), "/affinity/viewers/u1/events?limit=1").body)["events"];
  const std::string ts = std::to_string(int64_t(events.at(0)["ts"]));
  auto r = RunAffinity({"backfill", "--data", data, "--group", "popularity", "--from", ts, "--to", ts}, 120);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--force publishes anyway"), std::string::npos) << r.output;
  EXPECT_EQ(CurrentSnapshot(data), before);
  r = RunAffinity({"backfill", "--data", data, "--group", "popularity", "--from", ts, "--to", ts, "--force"}, 120);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(CurrentSnapshot(data), before);
}

TEST_F(OperationsTest, ABadBackfillExitsWithTheReasonAndPublishesNothing) {
  const std::string data = dir_ / "data";
  const std::string before = CurrentSnapshot(data);
  const std::string config = dir_ / "retention.toml";
  std::ofstream(config) << "[events]\nretention_hours = 1\n";
  for (const auto& [args, says] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--group", "popularity", "--from", "2000", "--to", "1000"}, "is after --to"},
           {{"--group", "populartiy"}, "no feature group 'populartiy'"},
           {{"--group", "engagement"}, "is a stream group"},
           {{"--group", "popularity", "--from", "1000", "--config", config}, "outside the event log's retention"},
           {{"--group", "popularity", "--from", "1000", "--to", "2000"}, "no events in the window"}}) {
    std::vector<std::string> cmd = {"backfill", "--data", data};
    cmd.insert(cmd.end(), args.begin(), args.end());
    auto r = RunAffinity(cmd, 120);
    EXPECT_EQ(r.exit_code, 1) << says << ": " << r.output;
    EXPECT_NE(r.output.find(says), std::string::npos) << r.output;
    EXPECT_EQ(CurrentSnapshot(data), before) << says;
  }
}

}  // namespace
}  // namespace affinity
