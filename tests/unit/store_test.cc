#include <gtest/gtest.h>

#include <rocksdb/db.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "audit/audit_log.h"
#include "store/store.h"
#include "testing/raw_records.h"
#include "testing/temp_dir.h"

namespace affinity {
namespace {

using testing::TempDir;

// Writes audit values as bare JSON, the way builds before write stamps did.
void PutUnstampedAudits(const std::string& dir, const std::vector<std::pair<std::string, std::string>>& records) {
  ASSERT_TRUE(testing::PutRawRecords(dir, "audit", records));
}

Event MakeEvent(uint32_t viewer, uint32_t item, Action a = Action::kClick) {
  Event e;
  e.ts = 1000 + item;
  e.viewer = Ref(Kind::kUser, viewer);
  e.entity = Ref(Kind::kItem, item);
  e.action = a;
  return e;
}

TEST(RocksStoreTest, AppendAssignsConsecutiveOffsetsAndScansInOrder) {
  TempDir dir;
  auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary);
  std::vector<Event> a = {MakeEvent(1, 1), MakeEvent(1, 2)}, b = {MakeEvent(2, 3)};
  ASSERT_TRUE(store->AppendEvents(a, {}).ok());
  ASSERT_TRUE(store->AppendEvents(b, {}).ok());
  EXPECT_EQ(a[0].offset, 0u);
  EXPECT_EQ(a[1].offset, 1u);
  EXPECT_EQ(b[0].offset, 2u);
  std::vector<uint64_t> seen;
  ASSERT_TRUE(store->ScanEvents([&](const Event& e) { seen.push_back(e.offset); return true; }).ok());
  EXPECT_EQ(seen, (std::vector<uint64_t>{0, 1, 2}));
  EXPECT_EQ(store->NextOffset(), 3u);
}

TEST(RocksStoreTest, ReopenKeepsEventsEntitiesAndFollows) {
  TempDir dir;
  {
    auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary);
    std::vector<Event> evs = {MakeEvent(1, 5)};
    ASSERT_TRUE(store->AppendEvents(evs, {{Ref(Kind::kUser, 1), Ref(Kind::kUser, 2), true, 7}}).ok());
    ASSERT_TRUE(store->PutEntities({{Ref(Kind::kItem, 5), "i5", Ref(Kind::kCreator, 0), "topic", "{}"}}).ok());
  }
  auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary);
  EXPECT_EQ(store->NextOffset(), 1u);
  int follows = 0, entities = 0;
  ASSERT_TRUE(store->ScanFollows([&](Ref a, Ref b, int64_t ts) { follows++; EXPECT_EQ(ts, 7); }).ok());
  ASSERT_TRUE(store->ScanEntities([&](const EntityRecord& e) {
    entities++;
    EXPECT_EQ(e.ext_id, "i5");
    EXPECT_EQ(e.creator, Ref(Kind::kCreator, 0));
    EXPECT_EQ(e.cohort, "topic");
  }).ok());
  EXPECT_EQ(follows, 1);
  EXPECT_EQ(entities, 1);
}

TEST(RocksStoreTest, UnfollowDeletesTheEdge) {
  TempDir dir;
  auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary);
  std::vector<Event> evs;
  Ref a(Kind::kUser, 1), b(Kind::kUser, 2);
  ASSERT_TRUE(store->AppendEvents(evs, {{a, b, true, 1}}).ok());
  ASSERT_TRUE(store->AppendEvents(evs, {{a, b, false, 2}}).ok());
  int n = 0;
  ASSERT_TRUE(store->ScanFollows([&](Ref, Ref, int64_t) { n++; }).ok());
  EXPECT_EQ(n, 0);
}

TEST(RocksStoreTest, SecondSecondaryReaderSeesPrimaryWrites) {
  TempDir dir;
  auto primary = *OpenRocksStore(dir.path(), OpenMode::kPrimary);
  std::vector<Event> evs = {MakeEvent(1, 1)};
  ASSERT_TRUE(primary->AppendEvents(evs, {}).ok());
  auto secondary = OpenRocksStore(dir.path(), OpenMode::kSecondary);
  ASSERT_TRUE(secondary.ok()) << secondary.status();
  std::vector<Event> more = {MakeEvent(1, 2)};
  ASSERT_TRUE(primary->AppendEvents(more, {}).ok());
  ASSERT_TRUE((*secondary)->CatchUp().ok());
  EXPECT_EQ((*secondary)->NextOffset(), 2u);
  EXPECT_FALSE((*secondary)->AppendEvents(more, {}).ok());
}

TEST(RocksStoreTest, SecondPrimaryOnTheSameDirIsRefusedWithAReason) {
  TempDir dir;
  auto first = *OpenRocksStore(dir.path(), OpenMode::kPrimary);
  auto second = OpenRocksStore(dir.path(), OpenMode::kPrimary);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("lock"), std::string::npos) << second.status();
}

TEST(RocksStoreTest, AuditRecordsRoundTrip) {
  TempDir dir;
  auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary);
  ASSERT_TRUE(store->PutAudit("q_1", "{\"x\":1}").ok());
  auto got = store->GetAudit("q_1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(**got, "{\"x\":1}");
  EXPECT_FALSE(store->GetAudit("q_2")->has_value());
}

TEST(RocksStoreTest, AuditRecordsPastTheRetentionReadAsAbsentAndPruningRemovesThem) {
  TempDir dir;
  ManualClock clock;
  constexpr int64_t kDay = 24 * 3'600'000;
  {
    auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary, {.audit_retention_ms = 30 * kDay, .clock = &clock});
    ASSERT_TRUE(store->PutAudit("q_old", "{\"x\":1}").ok());
    clock.Advance(20 * kDay);
    ASSERT_TRUE(store->PutAudit("q_new", "{\"x\":2}").ok());
    clock.Advance(10 * kDay - 1);  // q_old is exactly 30 days old: still kept
    EXPECT_EQ(**store->GetAudit("q_old"), "{\"x\":1}");
    clock.Advance(2);
    EXPECT_FALSE(store->GetAudit("q_old")->has_value());
    EXPECT_EQ(**store->GetAudit("q_new"), "{\"x\":2}");
    ASSERT_TRUE(store->PruneAudits().ok());
  }
  // Reopened without a retention nothing expires on read, so what is absent now
  // was removed from disk by the pruning.
  auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary, {.audit_retention_ms = 0, .clock = &clock});
  EXPECT_FALSE(store->GetAudit("q_old")->has_value());
  EXPECT_EQ(**store->GetAudit("q_new"), "{\"x\":2}");
}

TEST(RocksStoreTest, UnstampedAuditRecordsExpireByTheServingTimeTheyCarry) {
  TempDir dir;
  ManualClock clock;
  constexpr int64_t kDay = 24 * 3'600'000;
  const int64_t now = clock.NowMillis();
  { auto created = *OpenRocksStore(dir.path(), OpenMode::kPrimary); }
  const std::string old_json = absl::StrCat("{\"request_id\":\"q_a\",\"ts\":", now - 31 * kDay, ",\"k\":2}");
  const std::string recent_json = absl::StrCat("{\"request_id\":\"q_b\",\"ts\":", now - kDay, ",\"k\":2}");
  PutUnstampedAudits(dir.path() + "/db", {{"q_a", old_json}, {"q_b", recent_json}, {"q_c", "{\"x\":1}"}});
  {
    auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary, {.audit_retention_ms = 30 * kDay, .clock = &clock});
    EXPECT_FALSE(store->GetAudit("q_a")->has_value());  // served 31 days ago
    EXPECT_EQ(**store->GetAudit("q_b"), recent_json);
    EXPECT_EQ(**store->GetAudit("q_c"), "{\"x\":1}");  // no serving time: kept
    ASSERT_TRUE(store->PruneAudits().ok());
  }
  auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary, {.audit_retention_ms = 0, .clock = &clock});
  EXPECT_FALSE(store->GetAudit("q_a")->has_value());  // pruned from disk
  EXPECT_EQ(**store->GetAudit("q_b"), recent_json);
  EXPECT_EQ(**store->GetAudit("q_c"), "{\"x\":1}");
}

TEST(RocksStoreTest, EventsPastTheRetentionAreSkippedThenPrunedAndTheirOffsetsNeverReused) {
  TempDir dir;
  ManualClock clock;
  constexpr int64_t kDay = 24 * 3'600'000;
  const StoreOptions keep_30_days{.clock = &clock, .event_retention_ms = 30 * kDay};
  auto ts_of = [](const Store& store) {
    std::vector<int64_t> ts;
    EXPECT_TRUE(store.ScanEvents([&](const Event& e) { return ts.push_back(e.ts), true; }).ok());
    return ts;
  };
  const int64_t now = clock.NowMillis();
  {
    auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary, keep_30_days);
    EXPECT_EQ(store->EventRetentionMs(), 30 * kDay);
    std::vector<Event> events = {MakeEvent(1, 1), MakeEvent(1, 2)};
    events[0].ts = now - 31 * kDay;
    events[1].ts = now - kDay;
    ASSERT_TRUE(store->AppendEvents(events, {}).ok());
    EXPECT_EQ(ts_of(*store), std::vector<int64_t>{now - kDay});  // skipped before any compaction
    ASSERT_TRUE(store->PruneEvents().ok());
  }
  {
    auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary, {.clock = &clock});  // no retention
    EXPECT_EQ(ts_of(*store), std::vector<int64_t>{now - kDay});                       // gone from disk
    EXPECT_EQ(store->NextOffset(), 2u);
  }
  clock.Advance(60 * kDay);  // now every event is past the retention
  {
    auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary, keep_30_days);
    ASSERT_TRUE(store->PruneEvents().ok());
  }
  auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary, {.clock = &clock});
  EXPECT_TRUE(ts_of(*store).empty());
  EXPECT_EQ(store->NextOffset(), 2u);  // an emptied log keeps its length
  std::vector<Event> more = {MakeEvent(2, 3)};
  ASSERT_TRUE(store->AppendEvents(more, {}).ok());
  EXPECT_EQ(more[0].offset, 2u);
}

TEST(RocksStoreTest, AuditRecordsAreKeptForeverWithoutARetention) {
  TempDir dir;
  ManualClock clock;
  auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary, {.audit_retention_ms = 0, .clock = &clock});
  ASSERT_TRUE(store->PutAudit("q_1", "{}").ok());
  clock.Advance(int64_t(10) * 365 * 24 * 3'600'000);
  ASSERT_TRUE(store->PruneAudits().ok());
  EXPECT_EQ(**store->GetAudit("q_1"), "{}");
}

TEST(RocksStoreTest, UsageCountsUnflushedWritesThenTheAuditTableFiles) {
  TempDir dir;
  auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary);
  const Store::Usage empty = store->GetUsage();
  EXPECT_EQ(empty.audit_disk_bytes, 0u);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(store->PutAudit("q_" + std::to_string(i), std::string(1000, 'x')).ok());
  const Store::Usage written = store->GetUsage();
  EXPECT_GT(written.memtable_bytes, empty.memtable_bytes);
  EXPECT_EQ(written.audit_disk_bytes, 0u);
  ASSERT_TRUE(store->PruneAudits().ok());  // flushes, then compacts the audit records
  const Store::Usage flushed = store->GetUsage();
  EXPECT_GT(flushed.audit_disk_bytes, 0u);
  EXPECT_GE(flushed.disk_bytes, flushed.audit_disk_bytes);
}

TEST(RocksStoreTest, MetadataSurvivesReopenAndIsReadOnlyForASecondary) {
  TempDir dir;
  {
    auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary);
    EXPECT_FALSE(store->GetMeta(kMetaUnorderedTimelines)->has_value());
    ASSERT_TRUE(store->PutMeta(kMetaUnorderedTimelines, "1").ok());
  }
  auto primary = *OpenRocksStore(dir.path(), OpenMode::kPrimary);
  EXPECT_EQ(**primary->GetMeta(kMetaUnorderedTimelines), "1");
  auto secondary = *OpenRocksStore(dir.path(), OpenMode::kSecondary);
  EXPECT_EQ(**secondary->GetMeta(kMetaUnorderedTimelines), "1");
  EXPECT_EQ(secondary->PutMeta("x", "y").code(), absl::StatusCode::kFailedPrecondition);
}

TEST(RocksStoreTest, ASecondaryLeavesNoDirectoryBehindWhenClosed) {
  TempDir dir;
  auto primary = *OpenRocksStore(dir.path(), OpenMode::kPrimary);
  auto count_secondaries = [&] {
    int n = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir.path() + "/tmp", ec))
      if (e.path().filename().string().rfind("secondary-", 0) == 0) ++n;
    return n;
  };
  {
    auto one = *OpenRocksStore(dir.path(), OpenMode::kSecondary);
    auto two = *OpenRocksStore(dir.path(), OpenMode::kSecondary);  // two at once in one process: a directory each
    EXPECT_EQ(count_secondaries(), 2);
    one.reset();
    EXPECT_EQ(count_secondaries(), 1);
    EXPECT_TRUE(two->GetMeta(kMetaUnorderedTimelines).ok());
  }
  EXPECT_EQ(count_secondaries(), 0);
}

TEST(AuditLogTest, RecordsQueuedFasterThanOneWriteAreAllStoredAndReadable) {
  TempDir dir;
  auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary);
  {
    AuditLog audit(store.get());
    for (int i = 0; i < 1000; ++i)  // more than one write's worth of records
      ASSERT_TRUE(audit.Record("q_" + std::to_string(i), "{\"i\":" + std::to_string(i) + "}"));
    EXPECT_EQ(**audit.Get("q_999"), "{\"i\":999}");  // readable while queued or written
    audit.Flush();
    EXPECT_EQ(audit.dropped(), 0u);
    EXPECT_EQ(audit.write_errors(), 0u);
  }
  for (int i = 0; i < 1000; ++i) {
    auto got = store->GetAudit("q_" + std::to_string(i));
    ASSERT_TRUE(got.ok() && got->has_value()) << i;
    EXPECT_EQ(**got, "{\"i\":" + std::to_string(i) + "}");
  }
}

}  // namespace
}  // namespace affinity

namespace affinity {
namespace {

// A data dir as builds before the viewer index wrote it: five column families,
// entity records in the first layout (u16 cohort length, no labels).
void WriteOldLayoutDataDir(const std::string& db_dir, const std::vector<Event>& events) {
  rocksdb::Options o;
  o.create_if_missing = true;
  o.create_missing_column_families = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const char* n : {"default", "events", "entities", "follows", "audit"}) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  std::filesystem::create_directories(db_dir);
  ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(o), db_dir, cfs, &handles, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  for (uint64_t i = 0; i < events.size(); ++i) {
    std::string key(8, '\0');
    for (int b = 0; b < 8; ++b) key[size_t(b)] = char((i >> (56 - 8 * b)) & 0xFF);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[1], key, EncodeEvent(events[i])).ok());
  }
  std::string entity;
  const uint32_t ref = Ref(Kind::kCreator, 0).bits, creator = Ref().bits;
  const uint16_t cohort_len = 3;
  entity.append(reinterpret_cast<const char*>(&ref), 4).append(reinterpret_cast<const char*>(&creator), 4);
  entity.append(reinterpret_cast<const char*>(&cohort_len), 2).append("new").append("{\"name\":\"Ana\"}");
  ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[2], "c0", entity).ok());
  for (auto* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
}

TEST(RocksStoreTest, AnOlderDataDirOpensAndReadsItsEntitiesAndEvents) {
  TempDir dir;
  WriteOldLayoutDataDir(dir.path() + "/db", {MakeEvent(1, 1), MakeEvent(2, 2), MakeEvent(1, 3)});
  {  // `affinity batch` may reach it before any server: a secondary opens what is there.
    auto secondary = OpenRocksStore(dir.path(), OpenMode::kSecondary);
    ASSERT_TRUE(secondary.ok()) << secondary.status();
    EXPECT_EQ((*secondary)->NextOffset(), 3u);
  }
  auto store = OpenRocksStore(dir.path(), OpenMode::kPrimary);
  ASSERT_TRUE(store.ok()) << store.status();
  std::vector<EntityRecord> entities;
  ASSERT_TRUE((*store)->ScanEntities([&](const EntityRecord& e) { entities.push_back(e); }).ok());
  ASSERT_EQ(entities.size(), 1u);
  EXPECT_EQ(entities[0].cohort, "new");
  EXPECT_EQ(entities[0].attributes, "{\"name\":\"Ana\"}");
  EXPECT_TRUE(entities[0].labels.empty());
  EXPECT_TRUE(entities[0].Recommendable(0));
  auto read = (*store)->ReadEvents({2, 0});
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[0].offset, 2u);  // in the order asked
  EXPECT_EQ((*read)[0].entity, Ref(Kind::kItem, 3));
  EXPECT_EQ((*read)[1].offset, 0u);
}

TEST(RocksStoreTest, EntityLabelsExpiryAndDeletionSurviveReopen) {
  TempDir dir;
  {
    auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary);
    EntityRecord e;
    e.ref = Ref(Kind::kItem, 0);
    e.ext_id = "i0";
    e.cohort = "topic-1";
    e.labels = {"jazz", "live"};
    e.expires_at = 1'767'225'600'000;
    e.deleted = true;
    e.attributes = "{\"name\":\"Song\"}";
    ASSERT_TRUE(store->PutEntities({e}).ok());
  }
  auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary);
  std::vector<EntityRecord> got;
  ASSERT_TRUE(store->ScanEntities([&](const EntityRecord& e) { got.push_back(e); }).ok());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].labels, (std::vector<std::string>{"jazz", "live"}));
  EXPECT_EQ(got[0].expires_at, 1'767'225'600'000);
  EXPECT_TRUE(got[0].deleted);
  EXPECT_EQ(got[0].cohort, "topic-1");
  EXPECT_EQ(got[0].attributes, "{\"name\":\"Song\"}");
}

TEST(RocksStoreTest, EventsAreReadBackByOffsetAndMissingOnesLeftOut) {
  TempDir dir;
  auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary);
  for (uint32_t item = 1; item <= 5; ++item) {
    std::vector<Event> e = {MakeEvent(7, item), MakeEvent(8, item)};
    ASSERT_TRUE(store->AppendEvents(e, {}).ok());
  }
  auto got = store->ReadEvents({8, 4, 99});
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].entity, Ref(Kind::kItem, 5));
  EXPECT_EQ((*got)[0].viewer, Ref(Kind::kUser, 7));
  EXPECT_EQ((*got)[1].entity, Ref(Kind::kItem, 3));
}

}  // namespace
}  // namespace affinity
