// The model registry's state on one machine: <data>/models/registry.json,
// replaced atomically (write + rename) under an exclusive lock on
// <data>/models/LOCK, so `affinity batch`, `affinity model ...` and a running
// server can change it together.
#pragma once

#include <string>

#include "models/model_registry.h"

namespace affinity {

class FileRegistryStateStore : public RegistryStateStore {
 public:
  // `models_dir`: <data>/models.
  explicit FileRegistryStateStore(std::string models_dir) : dir_(std::move(models_dir)) {}

  absl::StatusOr<RegistryState> Read() const override;
  absl::Status Update(const Change& change, bool create) override;
  std::string Where() const override { return dir_ + "/registry.json"; }

 private:
  std::string dir_;
};

}  // namespace affinity
