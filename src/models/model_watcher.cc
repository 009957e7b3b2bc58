#include "models/model_watcher.h"

#include <spdlog/spdlog.h>

#include "base/status.h"

namespace affinity {

ModelWatcher::ModelWatcher(std::string data_dir, int poll_ms, Install install, const Clock* clock)
    : clock_(clock),
      registry_(std::move(data_dir), clock),
      install_(std::move(install)),
      poller_(poll_ms, [this] { return Load(); }) {}

ModelWatcher::~ModelWatcher() { Stop(); }

absl::StatusOr<bool> ModelWatcher::Refresh() { return poller_.RunOnce(); }

std::shared_ptr<const LearnedRanker> ModelWatcher::Fallback(const RegistryState& st, std::vector<RefusedFile>* refused,
                                                            std::string* serving) {
  for (auto h = st.history.rbegin(); h != st.history.rend(); ++h) {
    const ModelVersion* v = st.Find(*h);
    if (!v || *h == st.current || v->rollout.state == ModelState::kRolledBack ||
        v->rollout.state == ModelState::kRefused)
      continue;
    auto m = registry_.Load(*h);
    if (m.ok()) {
      *serving = *h;
      return std::shared_ptr<const LearnedRanker>(*std::move(m));
    }
    refused->push_back({RefusedKind::kModel, *h, std::string(m.status().message()), "", clock_->NowMillis()});
  }
  serving->clear();
  return nullptr;
}

absl::StatusOr<bool> ModelWatcher::Load() {
  AFF_ASSIGN_OR_RETURN(RegistryState st, registry_.Read());
  bool start = false;
  std::string serving;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // A refused current model is looked at again on every poll: restoring its
    // files (or promoting another version) ends the refusal without a restart.
    if (st.current == wanted_ && refused_.empty()) {
      looked_ = true;
      return false;
    }
    start = !looked_;
    serving = current_;
  }
  std::shared_ptr<const LearnedRanker> model;
  if (!st.current.empty()) {
    auto m = registry_.Load(st.current);
    if (!m.ok()) {
      const std::string why(m.status().message());
      std::vector<RefusedFile> refused{{RefusedKind::kModel, st.current, why, "", clock_->NowMillis()}};
      if (start) {
        std::shared_ptr<const LearnedRanker> fallback = Fallback(st, &refused, &serving);
        install_(fallback);
      }
      for (RefusedFile& r : refused) r.serving = serving;
      std::lock_guard<std::mutex> lock(mu_);
      const bool same = !refused_.empty() && refused_.front().version == st.current && refused_.front().reason == why;
      if (!same) {
        refused_ = std::move(refused);
        spdlog::error("model {} refused: {}; serving {}", st.current, why,
                      serving.empty() ? std::string("the blend") : serving);
      }
      current_ = serving;
      wanted_ = st.current;
      looked_ = true;
      return absl::DataLossError("model " + st.current + " refused (" + why + "); serving " +
                                 (serving.empty() ? std::string("the blend") : serving));
    }
    model = std::move(*m);
  }
  install_(std::move(model));
  std::lock_guard<std::mutex> lock(mu_);
  if (!refused_.empty()) spdlog::info("model {} verifies: the refusal ends", st.current);
  refused_.clear();
  current_ = st.current;
  wanted_ = st.current;
  looked_ = true;
  return true;
}

void ModelWatcher::Start() { poller_.Start(); }

void ModelWatcher::Stop() { poller_.Stop(); }

absl::StatusOr<RegistryState> ModelWatcher::Registry() const { return registry_.Read(); }

std::string ModelWatcher::current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

std::vector<RefusedFile> ModelWatcher::refused() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<RefusedFile> out = refused_;
  for (const auto& [version, r] : arm_refused_) out.push_back(r);
  return out;
}

void ModelWatcher::NoteArmRefusal(const std::string& version, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  arm_refused_[version] = {RefusedKind::kModel, version, reason + " (an experiment arm's model; the arm serves the default model)",
                           current_, clock_->NowMillis()};
}


void ModelWatcher::ReportMetrics(MetricsSink& sink) const {
  sink.Gauge(kRefusedFilesMetric, kRefusedFilesHelp, {{"kind", "model"}}, double(refused().size()));
}

void ModelWatcher::ReportHealth(Health& health) const {
  health.Refuse("model", refused());
}

std::vector<AdminRoute> ModelWatcher::Routes() {
  AdminRoute list{"GET", "/admin/models", "models"};
  list.handle = [this](const AdminRequest&) -> absl::StatusOr<AdminReply> {
    auto st = Registry();
    if (!st.ok()) return st.status();
    const std::string loaded = current();  // beside what the registry says
    return AdminReply{200, RegistryJson(*st, &loaded)};
  };
  return {std::move(list)};
}

}  // namespace affinity
