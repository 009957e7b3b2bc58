// `affinity model list|promote|import|rollback`: the learned ranker's registry.
#include <cstdio>
#include <ctime>

#include "base/strings.h"
#include "experiments/canary.h"
#include "experiments/canary.h"
#include "models/model_registry.h"
#include "server/commands.h"

namespace affinity {

int ModelList(const std::string& data, bool json) {
  ModelRegistry models(data);
  auto st = models.Read();
  if (!st.ok()) return Fail(st.status());
  if (json) {
    auto text = ReadFile(models.dir() + "/registry.json");
    std::printf("%s", text ? text->c_str() : "{\"current\":\"\",\"history\":[],\"versions\":[]}\n");
    return 0;
  }
  std::printf("%-3s %-8s %-24s %-20s %-8s %-8s %-8s %-10s %-15s %s\n", "", "version", "created", "source", "ndcg", "blend",
              "current", "watermark", "rollout", "note");
  for (const auto& v : st->versions) {
    char when[32];
    std::time_t t = std::time_t(v.created_ms / 1000);
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    std::printf("%-3s %-8s %-24s %-20s %-8.4f %-8.4f %-8s %-10llu %-15s %s\n", v.version == st->current ? "*" : "",
                v.version.c_str(), when, v.source.c_str(), v.ndcg, v.blend_ndcg,
                v.current_ndcg >= 0 ? std::to_string(v.current_ndcg).substr(0, 6).c_str() : "-",
                (unsigned long long)v.watermark_offset, v.rollout.state.empty() ? "-" : v.rollout.state.c_str(),
                v.rollout.note.c_str());
  }
  if (!st->canary.empty()) {
    const ModelVersion* c = st->Find(st->canary);
    std::printf("canary: %s on %g%% of viewers, decided after %lld canary viewers (%s)\n", st->canary.c_str(),
                c ? c->rollout.share : 0.0, c ? (long long)c->rollout.min_viewers : 0LL,
                c && c->rollout.state == "canary-pending" ? "waiting for a server to start it"
                                                          : ("experiment " + CanaryExperimentId(st->canary) +
                                                             "; its report has the figures so far").c_str());
  }
  if (st->versions.empty()) std::printf("(no models yet: `affinity batch` trains one once feedback names responses)\n");
  return 0;
}

int ModelPromote(const std::string& data, const std::string& version, const std::string& config_path, bool force) {
  auto cfg = LoadConfig(config_path);
  if (!cfg.ok()) return Fail(cfg.status());
  ModelRegistry models(data);
  if (auto s = models.Promote(version, cfg->ranker.gate_tolerance, force); !s.ok()) return Fail(s);
  std::printf("promoted %s\n", version.c_str());
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
  std::printf("rolled back to %s\n", v->c_str());
  return 0;
}

}  // namespace affinity
