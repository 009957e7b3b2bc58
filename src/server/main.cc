// The affinity command line: serve, generate, import, batch.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <csignal>
#include <ctime>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "api/http_server.h"
#include "api/metrics.h"
#include "api/routes.h"
#include "audit/audit_log.h"
#include "base/strings.h"
#include "batch/pipeline.h"
#include "data/generate.h"
#include "data/importers.h"
#include "eval/evaluator.h"
#include "features/snapshot.h"
#include "models/logged_training.h"
#include "models/model_registry.h"
#include "serving/query_engine.h"
#include "state/ingestor.h"
#include "state/live_state.h"
#include "state/registry.h"
#include "store/store.h"

namespace affinity {
namespace {

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "affinity: %s\n", std::string(s.message()).c_str());
  return 1;
}

absl::StatusOr<Config> LoadConfig(const std::string& path) {
  if (path.empty()) return Config();
  return Config::FromTomlFile(path);
}

bool Interactive() { return ::isatty(STDERR_FILENO); }

int Serve(const std::string& data, const std::string& host, int port, const std::string& config_path) {
  auto cfg = LoadConfig(config_path);
  if (!cfg.ok()) return Fail(cfg.status());
  Config config = *cfg;
  if (!host.empty()) config.server.host = host;
  if (port >= 0) config.server.port = port;
  const Clock* clock = SystemClock::Default();
  auto store = OpenRocksStore(data, OpenMode::kPrimary, StoreOptionsFor(config, clock));
  if (!store.ok()) return Fail(store.status());
  EntityRegistry registry;
  LiveState live(config.actions);
  auto t0 = std::chrono::steady_clock::now();
  if (auto s = Ingestor::LoadRegistry(**store, &registry); !s.ok()) return Fail(s);
  if (auto s = live.Load(**store); !s.ok()) return Fail(s);
  spdlog::info("{{\"msg\":\"state loaded\",\"entities\":{},\"events\":{},\"seconds\":{:.2f}}}", registry.Total(),
               live.events_applied(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  SnapshotManager snapshots(data, config.serving.snapshot_poll_ms, config.serving.ann_ef_search);
  if (auto s = snapshots.LoadInitial(); !s.ok())
    spdlog::warn("{{\"msg\":\"snapshot not loaded, serving without it\",\"error\":\"{}\"}}", std::string(s.message()));
  snapshots.Start();
  AuditLog audit(store->get());
  Ingestor ingestor(store->get(), &registry, &live, config.actions, clock);
  QueryEngine engine(config.serving, &registry, &live, &snapshots, &audit, clock);
  // The current learned ranker from the model registry, swapped in when promoted.
  ModelWatcher models(data, config.serving.snapshot_poll_ms, [&](std::shared_ptr<const LearnedRanker> m) {
    spdlog::info("{{\"msg\":\"learned ranker installed\",\"model\":\"{}\"}}", m ? m->version() : "none");
    engine.SetLearnedRanker(std::move(m));
  });
  if (auto s = models.Refresh(); !s.ok())
    spdlog::warn("{{\"msg\":\"model not loaded, ranking with the blend\",\"error\":\"{}\"}}", std::string(s.status().message()));
  models.Start();
  Metrics metrics;
  ApiRoutes routes({&config, store->get(), &registry, &live, &ingestor, &engine, &snapshots, &audit, &metrics, clock});
  HttpServer server(config.server.host, config.server.port, config.server.threads,
                    size_t(config.server.max_body_bytes), [&](const HttpRequest& r) { return routes.Handle(r); });
  // Block the stop signals in every thread; the main thread waits for them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  if (auto s = server.Start(); !s.ok()) return Fail(s);
  routes.SetReady(true);
  auto snap = snapshots.Get();
  spdlog::info("{{\"msg\":\"serving\",\"address\":\"http://{}:{}\",\"snapshot\":\"{}\"}}", config.server.host,
               server.port(), snap ? snap->version : "");
  std::printf("affinity: serving on http://%s:%d\n", config.server.host.c_str(), server.port());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  spdlog::info("{{\"msg\":\"stopping\",\"signal\":{}}}", sig);
  server.Stop();
  models.Stop();
  snapshots.Stop();
  audit.Flush();
  return 0;
}

int Generate(const std::string& out, GenerateOptions o) {
  GenerateStats stats;
  auto t0 = std::chrono::steady_clock::now();
  auto s = GenerateWorld(o, out, &stats, [](double f) {
    if (Interactive()) std::fprintf(stderr, "\rgenerate: %3.0f%%", f * 100);
  });
  if (Interactive()) std::fprintf(stderr, "\r");
  if (!s.ok()) return Fail(s);
  std::printf("generated %lld users, %lld creators, %lld items, %lld events (%lld follows) in %s (%.1fs)\n",
              (long long)stats.users, (long long)stats.creators, (long long)stats.items, (long long)stats.events,
              (long long)stats.follows, out.c_str(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return 0;
}

// Imports with the server's configuration: events without a weight take the
// configured action weights, and events older than events.retention_hours are
// refused like feedback (the whole import, naming the line).
int Import(const std::string& data, const std::string& format, const std::string& path,
           const std::string& config_path) {
  auto cfg = LoadConfig(config_path);
  if (!cfg.ok()) return Fail(cfg.status());
  const Clock* clock = SystemClock::Default();
  auto store = OpenRocksStore(data, OpenMode::kPrimary, StoreOptionsFor(*cfg, clock));
  if (!store.ok()) return Fail(store.status());
  EntityRegistry registry;
  if (auto s = Ingestor::LoadRegistry(**store, &registry); !s.ok()) return Fail(s);
  Ingestor ingestor(store->get(), &registry, nullptr, cfg->actions, clock);
  ImportStats stats;
  auto t0 = std::chrono::steady_clock::now();
  if (Interactive()) std::fprintf(stderr, "import: reading %s...\n", path.c_str());
  auto s = ImportDataset(format, path, clock->NowMillis(), &ingestor, &stats);
  if (!s.ok()) return Fail(s);
  if (!stats.ordered) {
    std::printf("note: %s events carry no time or order; batch builds no session neighbours for this data dir\n",
                format.c_str());
  }
  std::printf("imported %zu entities and %zu events from %s (%.1fs)\n", stats.entities, stats.events, path.c_str(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return 0;
}

int Batch(const std::string& data, const std::string& config_path) {
  auto cfg = LoadConfig(config_path);
  if (!cfg.ok()) return Fail(cfg.status());
  auto report = RunBatch(data, *cfg, SystemClock::Default()->NowMillis(), [](const std::string& stage) {
    if (Interactive()) std::fprintf(stderr, "batch: %s done\n", stage.c_str());
  });
  if (!report.ok()) return Fail(report.status());
  std::printf("published snapshot %s: %llu events, %llu pairs, %.1fs %s\n", report->version.c_str(),
              (unsigned long long)report->events, (unsigned long long)report->pairs, report->seconds,
              report->stage_seconds_json.c_str());
  if (!cfg->ranker.train_in_batch) return 0;
  // The learned ranker, from logged impressions and outcomes.
  auto store = OpenRocksStore(data, OpenMode::kSecondary, StoreOptionsFor(*cfg, SystemClock::Default()));
  if (!store.ok()) return Fail(store.status());
  if (auto s = (*store)->CatchUp(); !s.ok()) return Fail(s);
  EntityRegistry registry;
  if (auto s = Ingestor::LoadRegistry(**store, &registry); !s.ok()) return Fail(s);
  auto trained = TrainFromLoggedImpressions(data, **store, registry, *cfg);
  if (!trained.ok()) return Fail(trained.status());
  if (!trained->trained) {
    std::printf("ranker: %s\n", trained->note.c_str());
  } else {
    std::printf("ranker: registered model %s from %zu logged responses (%zu rows): validation ndcg@20 %.4f, blend %.4f",
                trained->version.c_str(), trained->groups, trained->rows, trained->ndcg, trained->blend_ndcg);
    if (trained->current_ndcg >= 0) std::printf(", current model %.4f", trained->current_ndcg);
    std::printf("; %s\n", trained->promoted ? "promoted" : ("not promoted: " + trained->note).c_str());
  }
  return 0;
}

// Drops audit records (or events) past their retention from disk now (they
// otherwise go as compaction reaches them), e.g. after shortening it.
int Prune(const std::string& data, const std::string& config_path, bool events) {
  auto cfg = LoadConfig(config_path);
  if (!cfg.ok()) return Fail(cfg.status());
  const int hours = events ? cfg->events.retention_hours : cfg->audit.retention_hours;
  const char* what = events ? "events" : "audit records";
  if (hours == 0) {
    std::printf("%s.retention_hours is 0: %s are kept forever, nothing to prune\n", events ? "events" : "audit", what);
    return 0;
  }
  auto store = OpenRocksStore(data, OpenMode::kPrimary, StoreOptionsFor(*cfg, SystemClock::Default()));
  if (!store.ok()) return Fail(store.status());
  auto t0 = std::chrono::steady_clock::now();
  if (auto s = events ? (*store)->PruneEvents() : (*store)->PruneAudits(); !s.ok()) return Fail(s);
  std::printf("pruned %s older than %d hours (%.1fs)\n", what, hours,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return 0;
}

int ModelList(const std::string& data, bool json) {
  ModelRegistry models(data);
  auto st = models.Read();
  if (!st.ok()) return Fail(st.status());
  if (json) {
    auto text = ReadFile(models.dir() + "/registry.json");
    std::printf("%s", text ? text->c_str() : "{\"current\":\"\",\"history\":[],\"versions\":[]}\n");
    return 0;
  }
  std::printf("%-3s %-8s %-24s %-20s %-8s %-8s %-8s %s\n", "", "version", "created", "source", "ndcg", "blend",
              "current", "watermark");
  for (const auto& v : st->versions) {
    char when[32];
    std::time_t t = std::time_t(v.created_ms / 1000);
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    std::printf("%-3s %-8s %-24s %-20s %-8.4f %-8.4f %-8s %llu\n", v.version == st->current ? "*" : "", v.version.c_str(),
                when, v.source.c_str(), v.ndcg, v.blend_ndcg,
                v.current_ndcg >= 0 ? std::to_string(v.current_ndcg).substr(0, 6).c_str() : "-",
                (unsigned long long)v.watermark_offset);
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

int Eval(EvalOptions o, const std::string& config_path, const std::string& json_out, const std::string& topk_out,
         const std::string& report_out) {
  auto cfg = LoadConfig(config_path);
  if (!cfg.ok()) return Fail(cfg.status());
  o.config = *cfg;
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
    std::printf("ranker: validation ndcg@%d %.4f (blend %.4f on the same users), trained in %.1fs\n", r->k,
                r->ranker_validation_ndcg, r->blend_validation_ndcg, r->train_seconds);
  return 0;
}

}  // namespace
}  // namespace affinity

int main(int argc, char** argv) {
  using namespace affinity;
  spdlog::set_pattern("%v");
  CLI::App app{"affinity: explained recommendations of people, creators and items"};
  app.require_subcommand(1);

  std::string data, host, config_path;
  int port = -1;
  auto* serve = app.add_subcommand("serve", "serve the HTTP API over a data dir");
  serve->add_option("--data", data, "data dir")->required();
  serve->add_option("--host", host, "listen address (default 127.0.0.1)");
  serve->add_option("--port", port, "listen port (default 8080; 0 picks a free one)");
  serve->add_option("--config", config_path, "TOML configuration file");

  std::string out;
  GenerateOptions go;
  auto* gen = app.add_subcommand("generate", "write a synthetic world in the native format");
  gen->add_option("--out", out, "output dir")->required();
  gen->add_option("--users", go.users, "number of users")->capture_default_str();
  gen->add_option("--creators", go.creators, "number of creators")->capture_default_str();
  gen->add_option("--items", go.items, "number of items")->capture_default_str();
  gen->add_option("--events", go.events, "number of events")->capture_default_str();
  gen->add_option("--seed", go.seed, "random seed")->capture_default_str();

  std::string format, path;
  auto* imp = app.add_subcommand("import", "load a dataset into a data dir");
  imp->add_option("--data", data, "data dir")->required();
  imp->add_option("--format", format, "native (alias synthetic), hetrec-lastfm, lightgcn or snap-edges")->required();
  imp->add_option("path", path, "file or folder to import")->required();
  imp->add_option("--config", config_path, "TOML configuration file (action weights, events.retention_hours)");

  auto* batch = app.add_subcommand("batch", "run the offline pipeline once and publish a snapshot");
  batch->add_option("--data", data, "data dir")->required();
  batch->add_option("--config", config_path, "TOML configuration file");

  auto* model = app.add_subcommand("model", "the learned ranker's model registry");
  model->require_subcommand(1);
  bool model_json = false, force = false;
  std::string model_version;
  auto* mlist = model->add_subcommand("list", "list model versions (* marks the current one)");
  mlist->add_option("--data", data, "data dir")->required();
  mlist->add_flag("--json", model_json, "print the registry as JSON");
  auto* mpromote = model->add_subcommand("promote", "make a version current (refused when it fails the gate)");
  mpromote->add_option("--data", data, "data dir")->required();
  mpromote->add_option("version", model_version, "version, e.g. m000002")->required();
  mpromote->add_option("--config", config_path, "TOML configuration file (ranker.gate_tolerance)");
  mpromote->add_flag("--force", force, "skip the gate");
  std::string import_dir;
  auto* mimport = model->add_subcommand("import", "register a model saved by `eval --ranker learned --save-model DIR`");
  mimport->add_option("--data", data, "data dir")->required();
  mimport->add_option("dir", import_dir, "the saved model's dir")->required();
  auto* mrollback = model->add_subcommand("rollback", "make the previously current version current again");
  mrollback->add_option("--data", data, "data dir")->required();

  // `affinity audit prune` and `affinity events prune`.
  auto add_prune = [&](const char* name, const char* help, const char* what) {
    auto* part = app.add_subcommand(name, help);
    part->require_subcommand(1);
    const std::string setting = std::string(name) + ".retention_hours";
    auto* prune = part->add_subcommand(
        "prune", std::string("remove ") + what + " older than " + setting + " from disk now (stop the server first)");
    prune->add_option("--data", data, "data dir")->required();
    prune->add_option("--config", config_path, "TOML configuration file (" + setting + ")");
    return prune;
  };
  auto* aprune = add_prune("audit", "the audit log", "audit records");
  auto* eprune = add_prune("events", "the event log", "events");

  EvalOptions eo;
  std::string json_out, topk_out, report_out;
  auto* ev = app.add_subcommand("eval", "offline evaluation through the serving code path");
  ev->add_option("--format", eo.format, "lightgcn, native, snap-edges or hetrec-lastfm")->required();
  ev->add_option("--target", eo.target, "hetrec-lastfm: creators (held-out plays) or users (held-out friendships)");
  ev->add_option("--train", eo.train, "training file (lightgcn, snap-edges) or dataset folder (native, hetrec-lastfm)")
      ->required();
  ev->add_option("--test", eo.test, "test file (lightgcn)");
  ev->add_option("--k", eo.k, "cut-off")->capture_default_str();
  ev->add_option("--json", json_out, "write metrics as JSON");
  ev->add_option("--topk", topk_out, "write each test user's list: user item item ...");
  ev->add_option("--report", report_out, "write an HTML report with plots");
  ev->add_option("--ranker", eo.ranker, "off: the candidate blend; learned: LambdaMART trained on a validation slice")
      ->capture_default_str();
  ev->add_option("--ranker-model", eo.ranker_model, "with --ranker learned: evaluate this saved model instead of training");
  ev->add_option("--save-model", eo.save_model, "with --ranker learned: save the trained model in this dir");
  ev->add_option("--holdout", eo.holdout,
                 "share held out: native (latest positive events), snap-edges and hetrec (edges, plays)")
      ->capture_default_str();
  ev->add_option("--threads", eo.threads, "threads (0 = cores)");
  ev->add_option("--validation", eo.validation,
                 "lightgcn: hold out this share of each user's training items and evaluate on it instead of --test");
  ev->add_option("--validation-order", eo.validation_order, "with --validation: hold out the latest share or a random one")
      ->capture_default_str();
  ev->add_option("--config", config_path, "TOML configuration file");
  ev->add_option("--scratch", eo.scratch_dir, "where to build the evaluation world (default: a temp dir)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (*serve) return Serve(data, host, port, config_path);
  if (*gen) return Generate(out, go);
  if (*imp) return Import(data, format, path, config_path);
  if (*batch) return Batch(data, config_path);
  if (*ev) return Eval(eo, config_path, json_out, topk_out, report_out);
  if (*mlist) return ModelList(data, model_json);
  if (*mpromote) return ModelPromote(data, model_version, config_path, force);
  if (*mrollback) return ModelRollback(data);
  if (*mimport) return ModelImport(data, import_dir);
  if (*aprune) return Prune(data, config_path, /*events=*/false);
  if (*eprune) return Prune(data, config_path, /*events=*/true);
  return 1;
}
