// Holds the serving snapshot and swaps in newer ones found by polling CURRENT.
// A version that fails verification at load (a section's checksum, a
// truncated or missing file, CURRENT naming a version that is not there) is
// refused, never served: a server keeps the snapshot it serves, and a start
// falls back to the newest older kept version that verifies. What was
// refused, why and what serves instead is refused().
// Thread safety: Get() is lock-free for readers and safe concurrently with swaps.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/clock.h"
#include "base/component.h"
#include "base/poller.h"
#include "base/refused_file.h"
#include "features/snapshot.h"
#include "features/feature_settings.h"

namespace affinity {

// The version directories under data_dir/snapshots, newest first.
std::vector<std::string> KeptSnapshotVersions(const std::string& data_dir);

// What a load of the published snapshot found: the snapshot to serve (null:
// none verifies, or none is published) and the versions refused on the way.
struct SnapshotChoice {
  std::shared_ptr<const Snapshot> snapshot;
  std::vector<RefusedFile> refused;
};
// Loads the version `pointer` names (null: the data dir's CURRENT file); when
// it fails verification, the newest older kept version that verifies (each
// refusal says why). Refusals are stamped with `clock`'s time.
SnapshotChoice LoadNewestVerifiedSnapshot(const std::string& data_dir,
                                          const std::map<std::string, FeatureGroupSettings>& settings = {},
                                          const Clock* clock = SystemClock::Default(),
                                          const SnapshotPointer* pointer = nullptr);

// A component (base/component.h): the refused versions in /readyz,
// /admin/stats and affinity_refused_files{kind="snapshot"}.
class SnapshotManager : public Component {
 public:
  // `clock` stamps the refusals; `pointer` names the version to serve (null:
  // the data dir's CURRENT file).
  SnapshotManager(std::string data_dir, int poll_ms, int ef_search,
                  std::map<std::string, FeatureGroupSettings> settings = {},
                  const Clock* clock = SystemClock::Default(), std::shared_ptr<SnapshotPointer> pointer = nullptr);
  ~SnapshotManager() override;
  // The first load: CURRENT's version, or the newest older one that verifies
  // (an error naming what was refused, with the fallback then serving).
  absl::Status LoadInitial();
  // Called after each swap (on the thread that loaded it: the poller's, once
  // started), with the new snapshot and the version it replaced ("" for the
  // first). Set it before Start().
  using SwapListener = std::function<void(const Snapshot& now, const std::string& was)>;
  void SetSwapListener(SwapListener listener) { on_swap_ = std::move(listener); }
  void Start() override;  // background polling
  void Stop() override;
  std::shared_ptr<const Snapshot> Get() const { return current_.load(std::memory_order_acquire); }
  // Loads CURRENT now if it changed; returns whether a swap happened (an
  // error while CURRENT's version is refused).
  absl::StatusOr<bool> Refresh();
  uint64_t swaps() const { return poller_.changes(); }
  // Why the last look failed ("" once a later look succeeds).
  std::string last_error() const { return poller_.last_error(); }
  // The snapshot versions refused now (empty once CURRENT's version serves).
  std::vector<RefusedFile> refused() const;

  std::string_view name() const override { return "snapshots"; }
  void ReportMetrics(MetricsSink& sink) const override;
  void ReportHealth(Health& health) const override;

 private:
  absl::StatusOr<bool> Load();
  void Install(std::shared_ptr<const Snapshot> loaded);
  std::shared_ptr<SnapshotPointer> pointer_;
  std::string data_dir_;
  int ef_search_;
  std::map<std::string, FeatureGroupSettings> settings_;
  const Clock* clock_;
  std::atomic<std::shared_ptr<const Snapshot>> current_;
  SwapListener on_swap_;
  mutable std::mutex mu_;
  std::vector<RefusedFile> refused_;  // guarded by mu_
  // CURRENT's version and its files' sizes and times when refused: the same
  // files are not checked again on every poll; any change to them is.
  std::string refused_fingerprint_;  // guarded by mu_
  Poller poller_;
};

}  // namespace affinity
