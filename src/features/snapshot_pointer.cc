#include "features/snapshot_pointer.h"

#include <cerrno>

#include "base/status.h"
#include "base/strings.h"

namespace affinity {

std::string FileSnapshotPointer::Current() const {
  auto cur = ReadFile(path_);
  if (!cur) return "";
  std::string v = *cur;
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
  return v;
}

absl::Status FileSnapshotPointer::Set(const std::string& version) {
  if (!WriteFileAtomic(path_, version + "\n")) return FileWriteError("snapshot: cannot write CURRENT", errno);
  return absl::OkStatus();
}

std::shared_ptr<SnapshotPointer> PointerOr(std::shared_ptr<SnapshotPointer> pointer, const std::string& data_dir) {
  return pointer ? std::move(pointer) : std::make_shared<FileSnapshotPointer>(data_dir);
}

}  // namespace affinity
