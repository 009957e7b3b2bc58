#include "models/registry_file_store.h"

#include <cerrno>
#include <filesystem>

#include "base/file_lock.h"
#include "base/status.h"
#include "base/strings.h"

namespace affinity {

absl::StatusOr<RegistryState> FileRegistryStateStore::Read() const {
  auto text = ReadFile(Where());
  if (!text) return RegistryState();  // no registry yet
  auto st = ParseRegistryJson(*text);
  if (!st.ok()) return absl::DataLossError(Where() + ": " + std::string(st.status().message()));
  return st;
}

absl::Status FileRegistryStateStore::Update(const Change& change, bool create) {
  if (create) {
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec) return absl::InternalError("cannot create " + dir_ + ": " + ec.message());
  }
  auto lock = FileLock::Acquire(dir_ + "/LOCK", FileLock::Wait::kBlock);
  if (!lock.ok()) {
    if (create) return absl::InternalError("cannot lock " + dir_);
    return absl::NotFoundError("no model registry in " + dir_);
  }
  AFF_ASSIGN_OR_RETURN(RegistryState st, Read());
  AFF_ASSIGN_OR_RETURN(bool changed, change(st));
  if (!changed) return absl::OkStatus();
  if (!WriteFileAtomic(Where(), RegistryJson(st) + "\n")) return FileWriteError("cannot write " + Where(), errno);
  return absl::OkStatus();
}

}  // namespace affinity
