// An exclusive advisory lock (flock) on a file, held while the object lives:
// the file is opened, created when absent, and locked; the lock is released
// and the descriptor closed on destruction (or when the process ends, which
// is how `affinity batch` holds batch.lock). Two locks on one path exclude
// each other whether they are in one process or two.
// Thread safety: a FileLock is one owner's; distinct objects are independent.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace affinity {

class FileLock {
 public:
  enum class Wait {
    kBlock,  // wait until the holder releases it
    kTry,    // fail at once when it is held
  };
  // The lock on `path`. Errors name the path: the file cannot be opened or
  // created (the errno's status), or, with kTry, another holder has it
  // (Unavailable).
  static absl::StatusOr<FileLock> Acquire(const std::string& path, Wait wait);

  FileLock() = default;  // holds nothing
  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

  bool held() const { return fd_ >= 0; }
  const std::string& path() const { return path_; }

 private:
  FileLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  void Release();
  int fd_ = -1;
  std::string path_;
};

}  // namespace affinity
