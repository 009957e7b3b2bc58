// `affinity model list|promote|import|rollback`: the learned ranker's registry.
// `list` reads the registry in the data dir, or with --url asks a running
// server (GET /admin/models, which also says which version it has loaded);
// promote, rollback and import change the registry itself, so they take the
// data dir (a server follows the change within serving.snapshot_poll_ms).
#include <cstdio>
#include <ctime>

#include "base/strings.h"
#include "experiments/canary.h"
#include "models/model_registry.h"
#include "server/admin_commands.h"
#include "server/commands.h"

namespace affinity {
namespace {

std::string Figure(double v) {
  if (v < 0) return "-";
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

void PrintTable(const RegistryState& st, const std::string* loaded) {
  if (st.versions.empty()) {
    std::printf("no models yet: the blend ranks (`affinity batch` trains one once feedback names responses)\n");
    return;
  }
  std::printf("%-2s %-8s %-14s %-20s %-20s %-7s %-7s %-7s %-8s %-10s %s\n", "", "version", "state", "created",
              "source", "ndcg", "blend", "current", "compared", "watermark", "note");
  for (const auto& v : st.versions) {
    char when[32];
    std::time_t t = std::time_t(v.created_ms / 1000);
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    const std::string source = v.source.size() > 20 ? v.source.substr(0, 17) + "..." : v.source;
    std::printf("%-2s %-8s %-14s %-20s %-20s %-7s %-7s %-7s %-8s %-10llu %s\n", v.version == st.current ? "*" : "",
                v.version.c_str(), std::string(ModelStateName(v.rollout.state)).c_str(), when, source.c_str(),
                Figure(v.ndcg).c_str(), Figure(v.blend_ndcg).c_str(), Figure(v.current_ndcg).c_str(),
                v.compared_groups > 0 ? std::to_string(v.compared_groups).c_str() : "-",
                (unsigned long long)v.watermark_offset, v.rollout.note.c_str());
  }
  if (!st.canary.empty()) {
    const ModelVersion* c = st.Find(st.canary);
    std::printf("canary: %s on %g%% of viewers, decided after %lld canary viewers (%s)\n", st.canary.c_str(),
                c ? c->rollout.share : 0.0, c ? (long long)c->rollout.min_viewers : 0LL,
                c && c->rollout.state == ModelState::kCanaryPending
                    ? "waiting for a server to start it"
                    : ("experiment " + CanaryExperimentId(st.canary) + "; its report has the figures so far").c_str());
  }
  std::printf("serving: %s", st.current.empty() ? "the blend (no model is current)" : st.current.c_str());
  if (loaded) std::printf("; the server has %s loaded", loaded->empty() ? "no model" : loaded->c_str());
  std::printf("\n");
}

}  // namespace

int ModelList(const std::string& data, const std::string& url, bool json) {
  if (!url.empty()) {
    std::string body;
    if (const int rc = FetchAdmin(url, "/admin/models", &body); rc != 0) return rc;
    if (json) {
      std::printf("%s\n", body.c_str());
      return 0;
    }
    auto st = ParseRegistryJson(body);
    if (!st.ok()) return Fail(st.status());
    std::string loaded;
    const bool has_loaded = RegistryLoaded(body, &loaded);
    PrintTable(*st, has_loaded ? &loaded : nullptr);
    return 0;
  }
  ModelRegistry models(data);
  auto st = models.Read();
  if (!st.ok()) return Fail(st.status());
  if (json) {
    std::printf("%s\n", RegistryJson(*st).c_str());
    return 0;
  }
  PrintTable(*st, nullptr);
  return 0;
}

int ModelPromote(const std::string& data, const std::string& version, const std::string& config_path, bool force) {
  auto cfg = LoadConfig(config_path);
  if (!cfg.ok()) return Fail(cfg.status());
  ModelRegistry models(data);
  if (auto s = models.Promote(version, cfg->ranker.gate_tolerance, force); !s.ok()) return Fail(s);
  std::printf("promoted %s: it is the current model (servers load it within serving.snapshot_poll_ms)\n",
              version.c_str());
  return 0;
}

int ModelImport(const std::string& data, const std::string& dir) {
  ModelRegistry models(data);
  auto v = models.Import(dir);
  if (!v.ok()) return Fail(v.status());
  std::printf("registered %s from %s (not promoted)\n", v->c_str(), dir.c_str());
  return 0;
}

int ModelRollback(const std::string& data) {
  ModelRegistry models(data);
  auto v = models.Rollback();
  if (!v.ok()) return Fail(v.status());
  if (v->empty())
    std::printf("rolled back to the blend: no model is current (servers drop theirs within serving.snapshot_poll_ms)\n");
  else
    std::printf("rolled back to %s\n", v->c_str());
  return 0;
}

}  // namespace affinity
