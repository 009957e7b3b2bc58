// `affinity eval`: offline evaluation through the serving code path.
#include <cstdio>

#include "base/strings.h"
#include "eval/evaluator.h"
#include "server/commands.h"

namespace affinity {

int Eval(EvalOptions o, const std::string& config_path, const std::string& json_out, const std::string& topk_out,
         const std::string& report_out) {
  auto cfg = LoadConfig(config_path);
  if (!cfg.ok()) return Fail(cfg.status());
  o.config = {cfg->serving, cfg->actions, cfg->batch, cfg->ranker};
  o.config_path = config_path;
  auto r = RunEval(o, [](const std::string& stage, int64_t done, int64_t total) {
    if (!Interactive()) return;
    if (stage == "ranking")
      std::fprintf(stderr, "\reval: ranked %lld/%lld users", (long long)done, (long long)total);
    else
      std::fprintf(stderr, "eval: %s\n", stage.c_str());
  });
  if (Interactive()) std::fprintf(stderr, "\n");
  if (!r.ok()) return Fail(r.status());
  const std::string json = EvalJson(*r);
  if (!json_out.empty() && !WriteFileAtomic(json_out, json + "\n")) return Fail(absl::InternalError("cannot write " + json_out));
  if (!report_out.empty() && !WriteFileAtomic(report_out, EvalReportHtml(*r)))
    return Fail(absl::InternalError("cannot write " + report_out));
  if (!topk_out.empty()) {
    std::string out;
    for (const auto& [user, items] : r->topk) {
      out += user;
      for (const auto& i : items) out += " " + i;
      out += "\n";
    }
    if (!WriteFileAtomic(topk_out, out)) return Fail(absl::InternalError("cannot write " + topk_out));
  }
  for (const auto& [name, m] : r->baselines)
    std::printf("baseline %s: recall %.4f  ndcg %.4f  precision %.4f  hit_rate %.4f\n", name.c_str(), m.recall, m.ndcg,
                m.precision, m.hit);
  std::printf("eval: %lld users, k=%d: recall %.4f  ndcg %.4f  precision %.4f  map %.4f  hit_rate %.4f  coverage %.4f  "
              "(build %.1fs, ranking %.1fs)\n",
              (long long)r->users, r->k, r->at_k.recall, r->at_k.ndcg, r->at_k.precision, r->at_k.ap, r->at_k.hit,
              r->coverage, r->build_seconds, r->rank_seconds);
  std::printf("exposure: gini %.4f", r->exposure_gini);
  if (!r->creator_tiers.empty()) {
    std::printf(", creator gini %.4f", r->creator_exposure_gini);
    for (const auto& t : r->creator_tiers)
      std::printf("; %s: %.1f%% of catalogue, %.1f%% of slots", t.name.substr(0, t.name.find(" (")).c_str(),
                  100 * t.catalogue_share, 100 * t.exposure_share);
  }
  std::printf("\n");
  if (r->ranker == "learned" && o.ranker_model.empty())
    std::printf("ranker: validation ndcg@%d %.4f (blend %.4f on the same users), trained in %.1fs; streaming inputs %s\n",
                r->k, r->ranker_validation_ndcg, r->blend_validation_ndcg, r->train_seconds,
                r->ranker_stream_inputs.c_str());
  return 0;
}

}  // namespace affinity
