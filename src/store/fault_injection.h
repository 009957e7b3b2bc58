// Faults on command, under the store (the fault-injection suite, in RocksDB's
// manner): a file system over the machine's that fails writes, syncs or reads
// when told to, and a size limit that makes it a volume of that many bytes
// (every write past it fails as a full disk does, ENOSPC). Given to
// OpenRocksStore through StoreOptions::faults; without it the store writes to
// the machine's file system directly.
// Thread safety: the switches are atomics, safe to flip while the store runs.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace affinity {

class FaultInjection {
 public:
  // Every write (append) fails with an I/O error while on.
  void FailWrites(bool on) { fail_writes_.store(on); }
  // Every sync (fsync, fdatasync) fails with an I/O error while on.
  void FailSyncs(bool on) { fail_syncs_.store(on); }
  // Every read of a table file fails with an I/O error while on.
  void FailReads(bool on) { fail_reads_.store(on); }
  // Appends beyond `bytes` more fail with "no space left" (-1: no limit).
  void LimitBytes(int64_t bytes) {
    written_.store(0);
    limit_.store(bytes);
  }
  // Faults returned so far.
  uint64_t injected() const { return injected_.load(); }

  // Internal to store/: the file system that applies these switches
  // (a rocksdb::FileSystem, kept opaque here).
  std::shared_ptr<void> NewFileSystem();

  // What the file system asks (store/fault_injection.cc).
  bool WriteFails() { return Count(fail_writes_.load()); }
  bool SyncFails() { return Count(fail_syncs_.load()); }
  bool ReadFails() { return Count(fail_reads_.load()); }
  // Whether `n` more bytes exceed the limit (counted when they do not).
  bool NoSpaceFor(uint64_t n) {
    const int64_t limit = limit_.load();
    if (limit < 0) return false;
    if (written_.fetch_add(int64_t(n)) + int64_t(n) <= limit) return false;
    written_.fetch_sub(int64_t(n));
    return Count(true);
  }

 private:
  bool Count(bool fault) {
    if (fault) injected_.fetch_add(1);
    return fault;
  }
  std::atomic<bool> fail_writes_{false}, fail_syncs_{false}, fail_reads_{false};
  std::atomic<int64_t> limit_{-1}, written_{0};
  std::atomic<uint64_t> injected_{0};
};

}  // namespace affinity
