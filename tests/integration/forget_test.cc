// Forgetting a person end to end (docs/security.md, "Forget"): a served
// person is forgotten through POST /admin/viewers/{id}/forget, then every
// column family, the audit chain and the live state's checkpoint are decoded
// (never grepped: the files are compressed) and hold nothing of them; their
// history, their audit records and other people's responses show nothing of
// them; `affinity forget` does the same on a stopped server and refuses a
// data dir a server holds.
#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <thread>

#include "admin/forget_service.h"
#include "audit/audit_chain.h"
#include "features/feature_store.h"
#include "features/snapshot.h"
#include "integration/server_fixture.h"
#include "state/checkpointer.h"
#include "state/live_state.h"
#include "store/store.h"

namespace affinity {
namespace {

constexpr const char* kPerson = "u5";

// Whether text holds `term` as a whole word ("u5", not "u51").
bool HoldsWord(std::string_view text, std::string_view term) {
  auto id_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; };
  for (size_t at = text.find(term); !term.empty() && at != std::string_view::npos; at = text.find(term, at + 1)) {
    const size_t end = at + term.size();
    if ((at == 0 || !id_char(text[at - 1])) && (end == text.size() || !id_char(text[end]))) return true;
  }
  return false;
}

class ForgetEndToEndTest : public ServerTest {
 protected:
  // Their id or their display name (what reasons call them by).
  bool NamesPerson(std::string_view text) const { return HoldsWord(text, kPerson) || HoldsWord(text, name_); }

  // The person follows u6 and engages with what others did; u7 and u8 follow
  // the person; every one of them queries (people and items).
  std::vector<std::string> Serve(int* naming = nullptr) {
    // u9 follows u7 and u8, who follow the person: the person is u9's
    // friend of friends, named in the reason of what u7 and u8 are shown.
    auto fb = Post(port(), "/affinity/feedback",
                   R"({"events":[{"viewer_id":"u5","entity_id":"u6","action":"follow"},)"
                   R"({"viewer_id":"u7","entity_id":"u5","action":"follow"},)"
                   R"({"viewer_id":"u8","entity_id":"u5","action":"follow"},)"
                   R"({"viewer_id":"u9","entity_id":"u7","action":"follow"},)"
                   R"({"viewer_id":"u9","entity_id":"u8","action":"follow"}]})");
    EXPECT_EQ(fb.status, 202) << fb.body;
    std::vector<std::string> own;
    for (const char* viewer : {"u5", "u6", "u7", "u8", "u9"})
      for (const char* target : {"items", "users"}) {
        auto r = Post(port(), "/affinity/query",
                      std::string(R"({"viewer_id":")") + viewer + R"(","k":50,"target":")" + target + "\"}");
        EXPECT_EQ(r.status, 200) << r.body;
        if (std::string(viewer) == kPerson) own.emplace_back(std::string_view(Json(r.body)["request_id"]));
        else if (naming && NamesPerson(r.body)) ++*naming;
      }
    return own;
  }

  // Decodes what the stopped server left and finds nothing of the person.
  void ExpectNothingOfThePersonIn(const std::string& data, Ref ref) {
    auto store = *OpenRocksStore(data, OpenMode::kPrimary);
    ASSERT_TRUE(store->ScanEvents([&](const Event& e) {
      EXPECT_FALSE(e.viewer == ref || e.entity == ref) << "event at offset " << e.offset;
      return true;
    }).ok());
    ASSERT_TRUE(store->ScanFollows([&](Ref a, Ref b, int64_t) { EXPECT_FALSE(a == ref || b == ref); }).ok());
    ASSERT_TRUE(store->ScanEntities([&](const EntityRecord& e) {
      EXPECT_NE(e.ext_id, kPerson);
      if (e.ref == ref) {
        EXPECT_EQ(e.ext_id, ForgottenKey(ref));
        EXPECT_TRUE(e.deleted && e.cohort.empty() && e.attributes.empty() && e.labels.empty());
      }
    }).ok());
    ASSERT_TRUE(store->ScanExperimentRecords("", [&](std::string_view key, std::string_view) {
      EXPECT_FALSE(key.ends_with(std::string("/") + kPerson)) << key;
    }).ok());
    EXPECT_TRUE(store->AuditRecordsOf(kPerson)->empty());
    auto naming = AuditRecordsNaming(*store, {kPerson, name_});
    ASSERT_TRUE(naming.ok());
    EXPECT_TRUE(naming->empty()) << naming->size() << " audit records still name the person";
    ASSERT_TRUE(store->ScanAuditChain("", [&](std::string_view key, std::string_view value) {
      ChainEntry entry;
      if (DecodeChainEntry(value, &entry)) EXPECT_NE(entry.request_id, kPerson) << key;
      return true;
    }).ok());
    // The live state's checkpoint, read back whole.
    if (std::filesystem::exists(CheckpointPath(data))) {
      LiveState live(ActionWeights{});
      std::array<uint32_t, kNumKinds> known{};
      ASSERT_TRUE(store->ScanEntities([&](const EntityRecord& e) {
        known[int(e.ref.kind())] = std::max(known[int(e.ref.kind())], e.ref.id() + 1);
      }).ok());
      auto loaded = live.Load(*store, CheckpointPath(data), known);
      ASSERT_TRUE(loaded.ok()) << loaded.status();
      EXPECT_TRUE(loaded->from_checkpoint) << loaded->checkpoint_refused;
      const auto own = live.Viewer(ref);
      EXPECT_TRUE(own->follows.empty() && own->recent.empty() && own->engaged.empty() && own->events == 0);
      EXPECT_EQ(live.Followers(ref), 0u);
      EXPECT_EQ(live.LastEngagedMs(ref), 0);
      for (uint32_t v = 0; v < known[int(Kind::kUser)]; ++v) {
        const auto state = live.Viewer(Ref(Kind::kUser, v));
        EXPECT_FALSE(state->Follows(ref) || state->Engaged(ref) || state->Hid(ref)) << "viewer " << v;
      }
    }
  }

  // Decodes the served snapshot (its arrays, ANN labels and feature store)
  // and lists what in it was computed from the person: engagement, neighbour
  // lists with them, a trained embedding, graph statistics.
  std::vector<std::string> TracesInTheSnapshot(const std::string& data, Ref ref) {
    std::vector<std::string> traces;
    auto loaded = LoadCurrentSnapshot(data);
    if (!loaded.ok() || !*loaded) return {"no snapshot could be loaded"};
    const Snapshot& snap = **loaded;
    const uint32_t slot = ref.id();
    const KindSnapshot& users = snap.kind(ref.kind());
    auto at = [&](const FrozenArray<float>& a) { return slot < a.size() ? a[slot] : 0.f; };
    if (at(users.popularity) != 0.f) traces.push_back("popularity");
    if (at(users.followers) != 0.f || at(users.following) != 0.f || at(users.engagers) != 0.f)
      traces.push_back("graph statistics");
    if (users.Embedding(slot, snap.dim)) traces.push_back("an entity embedding");
    if (snap.ViewerEmbedding(slot)) traces.push_back("a viewer embedding");
    for (uint32_t label : users.ann_ids)
      if (label == slot) traces.push_back("the ANN index");
    // Neighbour and engager lists: none of theirs, and they are in no one's.
    auto csr = [&](const FrozenArray<uint32_t>& off, const FrozenArray<uint32_t>& ids, const std::string& what) {
      if (slot + 1 < off.size() && off[slot + 1] != off[slot]) traces.push_back(what + ": their own list");
      for (uint32_t id : ids)
        if (id == slot) traces.push_back(what + ": in another's list");
    };
    csr(users.nb_off, users.nb_ids, "co-engagement");
    csr(users.seq_off, users.seq_ids, "session neighbours");
    csr(users.eng_off, users.eng_users, "engagers");  // of them (as an entity), and among other people's
    for (const KindSnapshot& k : snap.kinds)  // among any entity's engagers (user dense ids)
      for (uint32_t id : k.eng_users)
        if (id == slot) traces.push_back("engagers: of an entity");
    if (slot + 1 < snap.user_eng_off.size() && snap.user_eng_off[slot + 1] != snap.user_eng_off[slot])
      traces.push_back("their engagements");
    for (uint32_t bits : snap.user_eng)
      if (bits == ref.bits) traces.push_back("someone's engagements");
    // The feature store: every batch group's record of the slot, if any, is all zeros.
    auto features = OpenRocksFeatureStore(data + "/snapshots/" + snap.version + "/features", true,
                                          BatchFeatureGroups(snap.dim));
    if (!features.ok()) return {features.status().ToString()};
    for (const FeatureGroup& g : BatchFeatureGroups(snap.dim)) {
      auto record = (*features)->Get(g.name, ref);
      if (!record.ok()) return {record.status().ToString()};
      if (!record->has_value()) continue;
      for (float v : (*record)->values)
        if (v != 0.f) {
          traces.push_back("feature group " + g.name);
          break;
        }
    }
    return traces;
  }

  // The person's slot, and their display name into name_.
  Ref RefOf(const std::string& data, const std::string& id) {
    auto store = *OpenRocksStore(data, OpenMode::kSecondary);
    Ref ref;
    EXPECT_TRUE(store->ScanEntities([&](const EntityRecord& e) {
      if (e.ext_id != id) return;
      ref = e.ref;
      name_ = DisplayNameIn(e.attributes);
    }).ok());
    EXPECT_FALSE(name_.empty());
    return ref;
  }
  std::string name_;
};

TEST_F(ForgetEndToEndTest, TheRouteRemovesThePersonFromTheStoreTheChainTheCheckpointAndResponses) {
  const Ref ref = RefOf(dir_ / "data", kPerson);
  ASSERT_TRUE(ref.valid());
  // Before: the served snapshot holds what was computed from their events (the check can fail).
  EXPECT_FALSE(TracesInTheSnapshot(dir_ / "data", ref).empty());
  int naming = 0;
  const std::vector<std::string> own = Serve(&naming);
  ASSERT_EQ(Get(port(), "/admin/audit/" + own[0]).status, 200);
  EXPECT_GT(naming, 0) << "no one else's response named the person: the checks below could not fail";

  auto r = Post(port(), std::string("/admin/viewers/") + kPerson + "/forget", "");
  ASSERT_EQ(r.status, 200) << r.body;
  auto removed = Json(r.body)["removed"];
  EXPECT_GT(int64_t(removed["events"]), 0) << r.body;
  EXPECT_EQ(int64_t(removed["audit_records"]), 2) << r.body;
  const int64_t redacted = int64_t(removed["audit_records"]) + int64_t(removed["audit_records_naming"]);
  EXPECT_GT(int64_t(removed["audit_records_naming"]), 0) << r.body;
  EXPECT_GE(int64_t(removed["follows"]), 3) << r.body;
  EXPECT_EQ(std::string_view(Json(r.body)["checkpoint"]), "written");

  EXPECT_EQ(Post(port(), "/admin/viewers/nobody-at-all/forget", "").status, 404);
  for (const std::string& id : own) EXPECT_EQ(Get(port(), "/admin/audit/" + id).status, 404);
  auto history = Get(port(), std::string("/affinity/viewers/") + kPerson + "/events");
  EXPECT_TRUE(history.status == 404 || simdjson::dom::array(Json(history.body)["events"]).size() == 0) << history.body;
  // Others' responses neither return nor name them; their own query is a new viewer's.
  for (const char* viewer : {"u6", "u7", "u8", "u9"}) {
    auto q = Post(port(), "/affinity/query", std::string(R"({"viewer_id":")") + viewer + R"(","k":50,"target":"users"})");
    ASSERT_EQ(q.status, 200) << q.body;
    EXPECT_FALSE(NamesPerson(q.body)) << q.body;
  }
  server_->Stop(SIGTERM);
  ExpectNothingOfThePersonIn(dir_ / "data", ref);
  // The batch after the forget drops every version built from their events.
  const int64_t after = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now().time_since_epoch()).count();
  auto batch = RunAffinity({"batch", "--data", dir_ / "data"});
  ASSERT_EQ(batch.exit_code, 0) << batch.output;
  int versions = 0;
  for (const auto& v : std::filesystem::directory_iterator(dir_ / "data/snapshots")) {
    const std::string name = v.path().filename().string();
    if (name.size() != 7 || name[0] != 'v') continue;
    ++versions;
    std::ifstream in(v.path() / "manifest.json");
    const std::string manifest((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_GE(int64_t(Json(manifest)["created_ms"]), after) << name << " was built before the forget";
  }
  EXPECT_EQ(versions, 1);
  const std::vector<std::string> traces = TracesInTheSnapshot(dir_ / "data", ref);
  EXPECT_TRUE(traces.empty()) << traces.size() << " traces, the first: " << traces.front();
  auto verify = RunAffinity({"audit", "verify", "--data", dir_ / "data"});
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_NE(verify.output.find(std::to_string(redacted) + " redacted"), std::string::npos) << verify.output;
}

TEST_F(ForgetEndToEndTest, TheCommandForgetsOnAStoppedServerAndRefusesARunningOne) {
  const Ref ref = RefOf(dir_ / "data", kPerson);
  Serve();
  auto busy = RunAffinity({"forget", "--data", dir_ / "data", "--viewer", kPerson});
  EXPECT_NE(busy.exit_code, 0) << busy.output;
  EXPECT_NE(busy.output.find("stop the server"), std::string::npos) << busy.output;

  server_->Stop(SIGTERM);
  auto done = RunAffinity({"forget", "--data", dir_ / "data", "--viewer", kPerson});
  ASSERT_EQ(done.exit_code, 0) << done.output;
  EXPECT_NE(done.output.find("\"checkpoint\":\"removed\""), std::string::npos) << done.output;
  ExpectNothingOfThePersonIn(dir_ / "data", ref);
  auto unknown = RunAffinity({"forget", "--data", dir_ / "data", "--viewer", kPerson});
  EXPECT_NE(unknown.exit_code, 0) << unknown.output;

  server_ = std::make_unique<ServerProcess>(dir_ / "data");
  ASSERT_TRUE(server_->running()) << server_->log();
  auto history = Get(port(), std::string("/affinity/viewers/") + kPerson + "/events");
  EXPECT_TRUE(history.status == 404 || simdjson::dom::array(Json(history.body)["events"]).size() == 0) << history.body;
  // Their id is a new viewer's now.
  auto again = Post(port(), "/affinity/query", R"({"viewer_id":"u5","k":20})");
  auto fresh = Post(port(), "/affinity/query", R"({"viewer_id":"someone-new","k":20})");
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(Ids(again.body), Ids(fresh.body));
}

TEST_F(ForgetEndToEndTest, TheRouteStartsTheScheduledBatchAtOnce) {
  server_->Stop(SIGTERM);
  server_ = std::make_unique<ServerProcess>(dir_ / "data", std::vector<std::string>{"--batch-every", "1h"});
  ASSERT_TRUE(server_->running()) << server_->log();
  auto current = [&] {
    std::ifstream in(dir_ / "data/snapshots/CURRENT");
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  const std::string before = current();
  auto r = Post(port(), std::string("/admin/viewers/") + kPerson + "/forget", "");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(std::string_view(Json(r.body)["batch"]), "started");
  // An hour before the schedule's first run: only the forget can have started this one.
  for (int i = 0; i < 600 && current() == before; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_NE(current(), before) << server_->log();
}

}  // namespace
}  // namespace affinity
