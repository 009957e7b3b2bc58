#include "state/storage_guard.h"

#include <spdlog/spdlog.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>

#include "base/status.h"
#include "store/store.h"
#include "state/storage_options.h"

namespace affinity {
namespace {

std::string Mib(uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

}  // namespace

StorageGuard::StorageGuard(std::string path, Store* store, const StorageOptions& options)
    : path_(std::move(path)),
      store_(store),
      floor_bytes_(uint64_t(std::max<int64_t>(0, options.min_free_mb)) << 20),
      poll_ms_(std::max(50, options.poll_ms)) {}

StorageGuard::~StorageGuard() { Stop(); }

void StorageGuard::Start() {
  Poll();
  if (thread_.joinable()) return;
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      wake_.wait_for(lock, std::chrono::milliseconds(poll_ms_));
      if (stop_) break;
      lock.unlock();
      Poll();
      lock.lock();
    }
  });
}

void StorageGuard::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::optional<std::string> StorageGuard::Refusal() const {
  if (store_) {
    if (std::string ro = store_->ReadOnlyReason(); !ro.empty()) return ro;
  }
  const uint64_t free = free_bytes_.load(std::memory_order_relaxed);
  if (free < floor_bytes_)
    return "the data dir's volume (" + path_ + ") has " + Mib(free) + " free, below storage.min_free_mb (" +
           Mib(floor_bytes_) + "): writes are refused until space is freed, and resume on their own";
  if (store_) {
    if (std::string failed = store_->BackgroundError(); !failed.empty())
      return "writes to the data dir's volume (" + path_ + ") are failing: " + failed +
             "; they resume on their own once the volume takes writes again";
  }
  return std::nullopt;
}

absl::Status StorageGuard::Admit() const {
  std::optional<std::string> why = Refusal();
  if (!why) return absl::OkStatus();
  refused_.fetch_add(1, std::memory_order_relaxed);
  return StorageError(*why);
}

void StorageGuard::Poll() {
  struct statvfs v;
  if (::statvfs(path_.c_str(), &v) == 0) {
    free_bytes_.store(uint64_t(v.f_bavail) * v.f_frsize, std::memory_order_relaxed);
    total_bytes_.store(uint64_t(v.f_blocks) * v.f_frsize, std::memory_order_relaxed);
  }
  // A store stopped by a failed write: once the volume is above its floor
  // again, resume it.
  if (!store_ || store_->BackgroundError().empty() || free_bytes_.load(std::memory_order_relaxed) < floor_bytes_)
    return;
  if (const absl::Status resumed = store_->Resume(); !resumed.ok()) {
    spdlog::warn("storage: writes to {} still fail: {}", path_, std::string(resumed.message()));
    return;
  }
  resumes_.fetch_add(1, std::memory_order_relaxed);
  spdlog::info("storage: {} takes writes again ({} free)", path_, Mib(free_bytes_.load(std::memory_order_relaxed)));
}

StorageGuard::State StorageGuard::Get() const {
  State s;
  const std::optional<std::string> refusal = Refusal();
  s.reason = refusal.value_or("");
  s.writable = !refusal;
  const uint64_t free = free_bytes_.load(std::memory_order_relaxed);
  s.free_bytes = free == UINT64_MAX ? 0 : free;
  s.total_bytes = total_bytes_.load(std::memory_order_relaxed);
  s.floor_bytes = floor_bytes_;
  s.refused = refused_.load(std::memory_order_relaxed);
  s.resumes = resumes_.load(std::memory_order_relaxed);
  s.read_only = store_ && !store_->ReadOnlyReason().empty();
  return s;
}

void StorageGuard::WriteState(JsonWriter& w) const {
  const State s = Get();
  w.Key("storage").BeginObject();
  w.Key("writable").Bool(s.writable).Key("read_only").Bool(s.read_only);
  if (!s.writable) w.Key("reason").String(s.reason);
  w.Key("volume").String(path_).Key("free_bytes").Uint(s.free_bytes);
  w.Key("total_bytes").Uint(s.total_bytes).Key("floor_bytes").Uint(s.floor_bytes);
  w.Key("refused_writes").Uint(s.refused).Key("resumes").Uint(s.resumes);
  w.EndObject();
}

void StorageGuard::ReportMetrics(MetricsSink& sink) const {
  const State s = Get();
  static constexpr std::string_view kHelp =
      "The data dir's volume (field: free_bytes, total_bytes, floor_bytes = storage.min_free_mb, "
      "writable = 1 while writes are admitted, read_only = 1 when the store opened read-only, "
      "refused = writes refused with 507 so far, resumes = times writes flowed again)";
  auto set = [&](const char* field, double v) { sink.Gauge("affinity_storage", kHelp, {{"field", field}}, v); };
  set("free_bytes", double(s.free_bytes));
  set("total_bytes", double(s.total_bytes));
  set("floor_bytes", double(s.floor_bytes));
  set("writable", s.writable ? 1 : 0);
  set("read_only", s.read_only ? 1 : 0);
  set("refused", double(s.refused));
  set("resumes", double(s.resumes));
}

void StorageGuard::ReportHealth(Health& health) const {
  if (!Get().writable) health.degraded.push_back("storage");
}

}  // namespace affinity
