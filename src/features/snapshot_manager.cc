#include "features/snapshot_manager.h"
#include "features/feature_settings.h"

#include <algorithm>
#include <filesystem>

namespace affinity {
namespace {

namespace fs = std::filesystem;

bool IsVersionName(const std::string& name) {
  return name.size() == 7 && name[0] == 'v' &&
         std::all_of(name.begin() + 1, name.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The version's files as they are now (names, sizes, modification times):
// equal fingerprints mean the same files, not worth checking again.
std::string Fingerprint(const std::string& data_dir, const std::string& version) {
  std::string fp = version;
  std::error_code ec;
  std::vector<std::string> parts;
  for (const auto& e : fs::directory_iterator(data_dir + "/snapshots/" + version, ec)) {
    std::error_code e2;
    const auto size = e.is_regular_file(e2) ? e.file_size(e2) : 0;
    const auto when = fs::last_write_time(e.path(), e2).time_since_epoch().count();
    parts.push_back(e.path().filename().string() + ":" + std::to_string(size) + ":" + std::to_string(when));
  }
  std::sort(parts.begin(), parts.end());
  for (const auto& p : parts) fp += "|" + p;
  return ec ? fp + "|absent" : fp;
}

// Why `version` (named by CURRENT, or kept) is not served, or OK with it loaded.
absl::StatusOr<std::shared_ptr<const Snapshot>> LoadVersion(const std::string& data_dir, const std::string& version,
                                                          const std::map<std::string, FeatureGroupSettings>& settings,
                                                          bool named_by_current) {
  const std::string dir = data_dir + "/snapshots/" + version;
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    return absl::NotFoundError(named_by_current ? "CURRENT names " + version + ", which is not on disk"
                                                : version + " is not on disk");
  return LoadSnapshot(dir, settings);
}

}  // namespace

std::vector<std::string> KeptSnapshotVersions(const std::string& data_dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(data_dir + "/snapshots", ec)) {
    std::string name = e.path().filename().string();
    if (IsVersionName(name) && e.is_directory(ec)) out.push_back(name);
  }
  std::sort(out.rbegin(), out.rend());
  return out;
}

SnapshotChoice LoadNewestVerifiedSnapshot(const std::string& data_dir,
                                          const std::map<std::string, FeatureGroupSettings>& settings,
                                          const Clock* clock, const SnapshotPointer* pointer) {
  SnapshotChoice choice;
  const std::string named = pointer ? pointer->Current() : CurrentSnapshotVersion(data_dir);
  const std::vector<std::string> kept = KeptSnapshotVersions(data_dir);
  if (named.empty() && kept.empty()) return choice;  // nothing published yet
  std::vector<std::string> tries;
  if (named.empty()) {
    choice.refused.push_back({RefusedKind::kSnapshot, "CURRENT", "snapshots/CURRENT is missing or empty, though versions are kept",
                              "", clock->NowMillis()});
  } else {
    tries.push_back(named);
  }
  for (const std::string& v : kept)
    if (named.empty() || v < named) tries.push_back(v);  // only older versions than the one published
  for (size_t i = 0; i < tries.size(); ++i) {
    auto loaded = LoadVersion(data_dir, tries[i], settings, !named.empty() && i == 0);
    if (loaded.ok()) {
      choice.snapshot = *std::move(loaded);
      break;
    }
    choice.refused.push_back({RefusedKind::kSnapshot, tries[i], std::string(loaded.status().message()), "", clock->NowMillis()});
  }
  const std::string serving = choice.snapshot ? choice.snapshot->version : "";
  for (RefusedFile& r : choice.refused) r.serving = serving;
  return choice;
}

SnapshotManager::SnapshotManager(std::string data_dir, int poll_ms, int ef_search,
                                 std::map<std::string, FeatureGroupSettings> settings, const Clock* clock,
                                 std::shared_ptr<SnapshotPointer> pointer)
    : pointer_(PointerOr(std::move(pointer), data_dir)),
      data_dir_(std::move(data_dir)),
      ef_search_(ef_search),
      settings_(std::move(settings)),
      clock_(clock),
      poller_(poll_ms, [this] { return Load(); }) {}

SnapshotManager::~SnapshotManager() { Stop(); }

absl::Status SnapshotManager::LoadInitial() { return Refresh().status(); }

absl::StatusOr<bool> SnapshotManager::Refresh() { return poller_.RunOnce(); }

void SnapshotManager::Install(std::shared_ptr<const Snapshot> loaded) {
  for (const auto& ks : loaded->kinds)
    if (ks.ann) ks.ann->SetEf(size_t(ef_search_));
  auto was = Get();
  current_.store(loaded, std::memory_order_release);
  if (on_swap_) on_swap_(*loaded, was ? was->version : std::string());
}

absl::StatusOr<bool> SnapshotManager::Load() {
  const std::string v = pointer_->Current();
  auto cur = Get();
  auto refusal = [](const std::vector<RefusedFile>& refused) {
    std::string why = "snapshot " + refused.front().version + " refused: " + refused.front().reason + "; serving " +
                      (refused.front().serving.empty() ? std::string("none") : refused.front().serving);
    return absl::DataLossError(why);
  };
  if (cur && cur->version == v) {
    std::lock_guard<std::mutex> lock(mu_);
    refused_.clear();  // CURRENT names what serves (again)
    return false;
  }
  const std::string fp = Fingerprint(data_dir_, v);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!refused_.empty() && fp == refused_fingerprint_) return refusal(refused_);  // the same files: still refused
  }
  if (!cur) {  // the start, or nothing served yet: the newest version that verifies
    SnapshotChoice choice = LoadNewestVerifiedSnapshot(data_dir_, settings_, clock_, pointer_.get());
    {
      std::lock_guard<std::mutex> lock(mu_);
      refused_ = choice.refused;
      refused_fingerprint_ = fp;
    }
    if (choice.snapshot) Install(choice.snapshot);
    if (!choice.refused.empty()) return refusal(choice.refused);
    return choice.snapshot != nullptr;
  }
  if (v.empty()) return false;  // CURRENT is gone while a version serves: keep it
  auto loaded = LoadVersion(data_dir_, v, settings_, true);
  if (!loaded.ok()) {  // keep serving what serves
    std::vector<RefusedFile> refused{{RefusedKind::kSnapshot, v, std::string(loaded.status().message()), cur->version, clock_->NowMillis()}};
    std::lock_guard<std::mutex> lock(mu_);
    refused_ = refused;
    refused_fingerprint_ = fp;
    return refusal(refused);
  }
  Install(*std::move(loaded));
  std::lock_guard<std::mutex> lock(mu_);
  refused_.clear();
  return true;
}

std::vector<RefusedFile> SnapshotManager::refused() const {
  std::lock_guard<std::mutex> lock(mu_);
  return refused_;
}

void SnapshotManager::Start() { poller_.Start(); }

void SnapshotManager::Stop() { poller_.Stop(); }


void SnapshotManager::ReportMetrics(MetricsSink& sink) const {
  sink.Gauge(kRefusedFilesMetric, kRefusedFilesHelp, {{"kind", "snapshot"}}, double(refused().size()));
}

void SnapshotManager::ReportHealth(Health& health) const {
  health.Refuse("snapshot", refused());
}

}  // namespace affinity
