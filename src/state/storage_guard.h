// The data dir's volume as a budget (docs/runbooks/disk-full.md): its free
// space is read every storage.poll_ms; while it is below storage.min_free_mb,
// or the store's writes are stopped by a failed write, every write is refused
// with a storage fault (HTTP 507 with Retry-After) before it reaches the store,
// while queries keep answering. Once space is back, the guard resumes the
// store's writes (Store::Resume) and admits writes again: no restart.
// Thread safety: safe for concurrent use.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "base/component.h"
#include "base/config.h"
#include "state/storage_options.h"

namespace affinity {

class Store;

// A component (base/component.h): "storage" in /admin/stats and /readyz,
// affinity_storage in /metrics, "storage" degraded while writes are refused.
class StorageGuard : public Component {
 public:
  // `path`: a directory on the volume (the data dir). `store` may be null (a
  // volume watched without a store).
  StorageGuard(std::string path, Store* store, const StorageOptions& options);
  ~StorageGuard() override;
  StorageGuard(const StorageGuard&) = delete;
  StorageGuard& operator=(const StorageGuard&) = delete;

  // Reads the volume once now, then every poll_ms on a thread of its own.
  void Start() override;
  void Stop() override;

  // OK, or the storage fault a write would meet now: the store opened
  // read-only, the volume below its floor, or the store's writes stopped by a
  // failed write (Store::BackgroundError) until a poll resumes them.
  absl::Status Admit() const;
  // One look at the volume and the store (what the thread does each poll).
  void Poll();

  struct State {
    bool writable = true;
    std::string reason;  // why writes are refused ("" when writable)
    uint64_t free_bytes = 0, total_bytes = 0, floor_bytes = 0;
    uint64_t refused = 0;   // writes refused so far
    uint64_t resumes = 0;   // times writes flowed again after a stop
    bool read_only = false; // the store opened read-only (until a restart)
  };
  State Get() const;
  const std::string& path() const { return path_; }

  std::string_view name() const override { return "storage"; }
  void WriteStats(JsonWriter& w) const override { WriteState(w); }
  void WriteReady(JsonWriter& w) const override { WriteState(w); }
  void ReportMetrics(MetricsSink& sink) const override;
  void ReportHealth(Health& health) const override;

 private:
  std::optional<std::string> Refusal() const;  // why writes are refused; nullopt when one may go ahead
  void WriteState(JsonWriter& w) const;  // the "storage" object

  const std::string path_;
  Store* store_;
  const uint64_t floor_bytes_;
  const int poll_ms_;
  std::atomic<uint64_t> free_bytes_{UINT64_MAX}, total_bytes_{0};
  mutable std::atomic<uint64_t> refused_{0};
  std::atomic<uint64_t> resumes_{0};
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace affinity
