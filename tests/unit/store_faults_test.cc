// Storage faults under the store (store/fault_injection.h): a volume that
// fills, writes and syncs that fail. Every write that fails is a storage
// fault (507 at the HTTP edge), none ends the process (the RocksDB the binary
// links keeps no debug assertions: with them, a second write after a failed
// log write aborts), nothing acknowledged is lost, and writes resume once the
// volume takes them again, without reopening the store.
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "base/status.h"
#include "state/storage_guard.h"
#include "store/fault_injection.h"
#include "store/store.h"
#include "testing/temp_dir.h"
#include "state/storage_options.h"

namespace affinity {
namespace {

using testing::TempDir;

std::vector<Event> Batch(uint32_t viewer, int n) {
  std::vector<Event> events(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    events[size_t(i)].ts = 1'767'225'600'000 + i;
    events[size_t(i)].viewer = Ref(Kind::kUser, viewer);
    events[size_t(i)].entity = Ref(Kind::kItem, uint32_t(i));
    events[size_t(i)].context = std::string(200, 'x');
  }
  return events;
}

// Writers as a server runs them: synced event batches from two threads and
// unsynced audit records from a third, until the volume is full. Returns the
// offsets of the events acknowledged.
std::set<uint64_t> WriteUntilFull(Store* store, std::atomic<int>* storage_faults, std::atomic<int>* other_faults) {
  std::mutex mu;
  std::set<uint64_t> acked;
  auto writer = [&](uint32_t viewer) {
    for (int round = 0; round < 400; ++round) {
      std::vector<Event> events = Batch(viewer, 20);
      const absl::Status s = store->AppendEvents(events, {});
      if (s.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        for (const Event& e : events) acked.insert(e.offset);
      } else {
        (IsStorageError(s) ? *storage_faults : *other_faults) += 1;
      }
    }
  };
  std::thread audits([&] {
    for (int i = 0; i < 400; ++i) {
      const absl::Status s = store->PutAudit("q_" + std::to_string(i), std::string(3000, 'a'));
      if (!s.ok()) (IsStorageError(s) ? *storage_faults : *other_faults) += 1;
    }
  });
  std::thread a(writer, 1), b(writer, 2);
  a.join(), b.join(), audits.join();
  return acked;
}

TEST(StoreFaultsTest, AVolumeThatFillsFailsWritesAsStorageFaultsLosesNothingAckedAndResumesInPlace) {
  TempDir dir;
  auto faults = std::make_shared<FaultInjection>();
  auto opened = OpenRocksStore(dir.path(), OpenMode::kPrimary, {.faults = faults});
  ASSERT_TRUE(opened.ok()) << opened.status();
  Store* store = opened->get();
  faults->LimitBytes(2 << 20);  // 2 MiB more, then the volume is full
  std::atomic<int> storage_faults{0}, other_faults{0};
  const std::set<uint64_t> acked = WriteUntilFull(store, &storage_faults, &other_faults);
  EXPECT_GT(faults->injected(), 0u) << "the volume filled";
  EXPECT_GT(storage_faults.load(), 0);
  EXPECT_EQ(other_faults.load(), 0) << "every failed write is a storage fault";
  EXPECT_FALSE(store->BackgroundError().empty()) << "a failed log write stops the store's writes";
  // Still full: resuming fails and writes stay refused.
  EXPECT_FALSE(store->Resume().ok());
  std::vector<Event> more = Batch(3, 5);
  EXPECT_TRUE(IsStorageError(store->AppendEvents(more, {})));
  // Space is back: the same store takes writes again.
  faults->LimitBytes(-1);
  { const absl::Status r = store->Resume(); ASSERT_TRUE(r.ok()) << r; }
  EXPECT_TRUE(store->BackgroundError().empty());
  std::vector<Event> after = Batch(4, 5);
  ASSERT_TRUE(store->AppendEvents(after, {}).ok());
  // Every acknowledged event is in the log, as is the one written after.
  std::set<uint64_t> stored;
  ASSERT_TRUE(store->ScanEvents([&](const Event& e) {
    stored.insert(e.offset);
    return true;
  }).ok());
  for (uint64_t offset : acked) EXPECT_TRUE(stored.count(offset)) << "acknowledged event " << offset << " lost";
  EXPECT_TRUE(stored.count(after[0].offset));
  RecordProperty("acknowledged_events", int(acked.size()));
  RecordProperty("refused_writes", storage_faults.load());
}

// A failed sync or write of the log (an I/O error, not a full volume) is a
// storage fault too, again and again on the failed log, never an abort.
// RocksDB does not resume such a store in place: reopened once the faults
// stop, it holds every acknowledged event and takes writes.
TEST(StoreFaultsTest, FailingSyncsAndWritesAreStorageFaultsAndAReopenedStoreHoldsEveryAckedEvent) {
  TempDir dir;
  for (auto fail : {&FaultInjection::FailSyncs, &FaultInjection::FailWrites}) {
    auto faults = std::make_shared<FaultInjection>();
    auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary, {.faults = faults});
    std::vector<Event> acked = Batch(1, 3);
    ASSERT_TRUE(store->AppendEvents(acked, {}).ok());
    ((*faults).*fail)(true);
    for (int i = 0; i < 3; ++i) {
      std::vector<Event> events = Batch(2, 3);
      const absl::Status s = store->AppendEvents(events, {});
      EXPECT_TRUE(IsStorageError(s)) << s;
      EntityRecord item;
      item.ref = Ref(Kind::kItem, 1);
      item.ext_id = "i1";
      const absl::Status e = store->PutEntities({item});
      EXPECT_TRUE(IsStorageError(e)) << e;
      EXPECT_TRUE(IsStorageError(store->Resume()));
    }
    ((*faults).*fail)(false);
    store.reset();
    auto reopened = *OpenRocksStore(dir.path(), OpenMode::kPrimary);
    std::set<uint64_t> stored;
    ASSERT_TRUE(reopened->ScanEvents([&](const Event& e) {
      stored.insert(e.offset);
      return true;
    }).ok());
    for (const Event& e : acked) EXPECT_TRUE(stored.count(e.offset)) << "acknowledged event " << e.offset << " lost";
    std::vector<Event> events = Batch(3, 3);
    EXPECT_TRUE(reopened->AppendEvents(events, {}).ok());
  }
}

// A log write that fails while every memtable is empty (a store just opened,
// or just flushed): RocksDB keeps the failed log's writer after it resumes, so
// unless the store opens a new log its writes would fail ("Writer has previous
// error") until it is reopened. It resumes in place and takes writes.
TEST(StoreFaultsTest, ALogWriteFailingOnAnEmptyMemtableResumesInPlaceAndTakesWritesAgain) {
  TempDir dir;
  auto faults = std::make_shared<FaultInjection>();
  auto opened = OpenRocksStore(dir.path(), OpenMode::kPrimary, {.faults = faults});
  ASSERT_TRUE(opened.ok()) << opened.status();
  Store* store = opened->get();
  faults->LimitBytes(0);  // full from the first byte
  std::vector<Event> refused = Batch(1, 5);
  EXPECT_TRUE(IsStorageError(store->AppendEvents(refused, {})));
  faults->LimitBytes(-1);
  { const absl::Status r = store->Resume(); ASSERT_TRUE(r.ok()) << r.ToString(); }
  for (int i = 0; i < 3; ++i) {
    std::vector<Event> events = Batch(2, 5);
    const absl::Status s = store->AppendEvents(events, {});
    ASSERT_TRUE(s.ok()) << "write " << i << " after resuming: " << s;
  }
  std::vector<Event> last = Batch(3, 5);
  ASSERT_TRUE(store->AppendEvents(last, {}).ok());
  opened->reset();
  auto reopened = *OpenRocksStore(dir.path(), OpenMode::kPrimary);
  uint64_t n = 0;
  ASSERT_TRUE(reopened->ScanEvents([&](const Event&) { return ++n, true; }).ok());
  EXPECT_EQ(n, 20u) << "the batches written after resuming, and none of the refused one";
}

// The guard refuses writes below the floor before the store meets a full
// volume, says why, refuses them while the store's writes are stopped by a
// failed write, and resumes the store once a poll finds the volume writable.
TEST(StorageGuardTest, WritesAreRefusedBelowTheFloorOrWhileTheStoreFailsAndAdmittedOnceAPollResumesIt) {
  TempDir dir;
  StorageOptions o;
  o.min_free_mb = int64_t(1) << 40;  // more than any volume has
  StorageGuard full(dir.path(), nullptr, o);
  full.Poll();
  const absl::Status refused = full.Admit();
  ASSERT_TRUE(IsStorageError(refused));
  EXPECT_NE(std::string(refused.message()).find("storage.min_free_mb"), std::string::npos) << refused;
  EXPECT_NE(std::string(refused.message()).find(dir.path()), std::string::npos) << "names the volume";
  EXPECT_FALSE(full.Get().writable);
  EXPECT_EQ(full.Get().refused, 1u);

  auto faults = std::make_shared<FaultInjection>();
  auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary, {.faults = faults});
  o.min_free_mb = 0;
  StorageGuard guard(dir.path(), store.get(), o);
  guard.Poll();
  EXPECT_TRUE(guard.Admit().ok());
  std::vector<Event> events = Batch(1, 3);
  ASSERT_TRUE(store->AppendEvents(events, {}).ok());
  faults->LimitBytes(0);  // the volume is full
  events = Batch(1, 3);
  ASSERT_TRUE(IsStorageError(store->AppendEvents(events, {})));
  const absl::Status failing = guard.Admit();
  ASSERT_TRUE(IsStorageError(failing));
  EXPECT_NE(std::string(failing.message()).find("are failing"), std::string::npos) << failing;
  EXPECT_EQ(guard.Get().resumes, 0u);
  // (The guard reads the real volume, which this budget does not fill: the
  // disk-full tests on a real volume cover a poll that finds it still full.)
  faults->LimitBytes(-1);
  guard.Poll();
  EXPECT_TRUE(guard.Admit().ok());
  EXPECT_EQ(guard.Get().resumes, 1u);
  events = Batch(2, 3);
  const absl::Status after = store->AppendEvents(events, {});
  EXPECT_TRUE(after.ok()) << after << " / " << store->BackgroundError();
}

}  // namespace
}  // namespace affinity
