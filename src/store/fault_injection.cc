#include "store/fault_injection.h"

#include <rocksdb/file_system.h>

namespace affinity {
namespace {

rocksdb::IOStatus Injected(const char* what) {
  return rocksdb::IOStatus::IOError(std::string("injected fault: ") + what);
}
rocksdb::IOStatus NoSpace() {
  return rocksdb::IOStatus::NoSpace("injected fault: no space left on the volume (size limit reached)");
}

class FaultyWritableFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FaultyWritableFile(std::unique_ptr<rocksdb::FSWritableFile> f, FaultInjection* faults)
      : FSWritableFileOwnerWrapper(std::move(f)), faults_(faults) {}
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                           rocksdb::IODebugContext* dbg) override {
    if (faults_->WriteFails()) return Injected("write");
    if (faults_->NoSpaceFor(data.size())) return NoSpace();
    return FSWritableFileOwnerWrapper::Append(data, o, dbg);
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                           const rocksdb::DataVerificationInfo& info, rocksdb::IODebugContext* dbg) override {
    if (faults_->WriteFails()) return Injected("write");
    if (faults_->NoSpaceFor(data.size())) return NoSpace();
    return FSWritableFileOwnerWrapper::Append(data, o, info, dbg);
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset, const rocksdb::IOOptions& o,
                                     rocksdb::IODebugContext* dbg) override {
    if (faults_->WriteFails()) return Injected("write");
    if (faults_->NoSpaceFor(data.size())) return NoSpace();
    return FSWritableFileOwnerWrapper::PositionedAppend(data, offset, o, dbg);
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    if (faults_->SyncFails()) return Injected("sync");
    return FSWritableFileOwnerWrapper::Sync(o, dbg);
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    if (faults_->SyncFails()) return Injected("fsync");
    return FSWritableFileOwnerWrapper::Fsync(o, dbg);
  }
  rocksdb::IOStatus RangeSync(uint64_t offset, uint64_t n, const rocksdb::IOOptions& o,
                              rocksdb::IODebugContext* dbg) override {
    if (faults_->SyncFails()) return Injected("range sync");
    return FSWritableFileOwnerWrapper::RangeSync(offset, n, o, dbg);
  }

 private:
  FaultInjection* faults_;
};

class FaultyRandomAccessFile final : public rocksdb::FSRandomAccessFileOwnerWrapper {
 public:
  FaultyRandomAccessFile(std::unique_ptr<rocksdb::FSRandomAccessFile> f, FaultInjection* faults)
      : FSRandomAccessFileOwnerWrapper(std::move(f)), faults_(faults) {}
  rocksdb::IOStatus Read(uint64_t offset, size_t n, const rocksdb::IOOptions& o, rocksdb::Slice* result,
                         char* scratch, rocksdb::IODebugContext* dbg) const override {
    if (faults_->ReadFails()) return Injected("read");
    return FSRandomAccessFileOwnerWrapper::Read(offset, n, o, result, scratch, dbg);
  }
  rocksdb::IOStatus MultiRead(rocksdb::FSReadRequest* reqs, size_t n, const rocksdb::IOOptions& o,
                              rocksdb::IODebugContext* dbg) override {
    if (faults_->ReadFails()) return Injected("read");
    return FSRandomAccessFileOwnerWrapper::MultiRead(reqs, n, o, dbg);
  }

 private:
  FaultInjection* faults_;
};

class FaultyFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  explicit FaultyFileSystem(FaultInjection* faults)
      : FileSystemWrapper(rocksdb::FileSystem::Default()), faults_(faults) {}
  const char* Name() const override { return "affinity.FaultyFileSystem"; }

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override {
    std::unique_ptr<rocksdb::FSWritableFile> file;
    rocksdb::IOStatus s = target()->NewWritableFile(f, o, &file, dbg);
    if (s.ok()) r->reset(new FaultyWritableFile(std::move(file), faults_));
    return s;
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* dbg) override {
    std::unique_ptr<rocksdb::FSWritableFile> file;
    rocksdb::IOStatus s = target()->ReopenWritableFile(f, o, &file, dbg);
    if (s.ok()) r->reset(new FaultyWritableFile(std::move(file), faults_));
    return s;
  }
  rocksdb::IOStatus ReuseWritableFile(const std::string& f, const std::string& old, const rocksdb::FileOptions& o,
                                      std::unique_ptr<rocksdb::FSWritableFile>* r,
                                      rocksdb::IODebugContext* dbg) override {
    std::unique_ptr<rocksdb::FSWritableFile> file;
    rocksdb::IOStatus s = target()->ReuseWritableFile(f, old, o, &file, dbg);
    if (s.ok()) r->reset(new FaultyWritableFile(std::move(file), faults_));
    return s;
  }
  rocksdb::IOStatus NewRandomAccessFile(const std::string& f, const rocksdb::FileOptions& o,
                                        std::unique_ptr<rocksdb::FSRandomAccessFile>* r,
                                        rocksdb::IODebugContext* dbg) override {
    std::unique_ptr<rocksdb::FSRandomAccessFile> file;
    rocksdb::IOStatus s = target()->NewRandomAccessFile(f, o, &file, dbg);
    if (s.ok()) r->reset(new FaultyRandomAccessFile(std::move(file), faults_));
    return s;
  }

 private:
  FaultInjection* faults_;
};

}  // namespace

std::shared_ptr<void> FaultInjection::NewFileSystem() { return std::make_shared<FaultyFileSystem>(this); }

}  // namespace affinity
