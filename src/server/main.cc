// The affinity command line: the commands and their flags (CLI11); each
// command's body is in server/*_command(s).cc and server/serve.cc.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "server/commands.h"
#include "server/admin_commands.h"

int main(int argc, char** argv) {
  using namespace affinity;
  spdlog::set_pattern("%v");
  CLI::App app{"affinity: explained recommendations of people, creators and items"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "affinity " AFFINITY_VERSION);

  std::string data, host, config_path;
  int port = -1;
  auto* serve = app.add_subcommand("serve", "serve the HTTP API over a data dir");
  serve->add_option("--data", data, "data dir")->required();
  serve->add_option("--host", host, "listen address (default 127.0.0.1)");
  serve->add_option("--port", port, "listen port (default 8080; 0 picks a free one)")->check(CLI::Range(0, 65535));
  serve->add_option("--config", config_path, "TOML configuration file");
  std::string batch_every;
  serve->add_option("--batch-every", batch_every,
                    "run the batch pipeline beside the server on this schedule (e.g. 30s, 15m, 1h), never two at once");

  BackfillArgs bf;
  auto* backfill = app.add_subcommand("backfill", "recompute one batch feature group from the event log and publish it");
  backfill->add_option("--data", bf.data, "data dir")->required();
  backfill->add_option("--group", bf.group, "the feature group (popularity, graph)")->required();
  backfill->add_option("--from", bf.from_ms, "only events at or after this time (unix ms)")->check(CLI::NonNegativeNumber);
  backfill->add_option("--to", bf.to_ms, "only events at or before this time (unix ms)")->check(CLI::NonNegativeNumber);
  backfill->add_option("--config", bf.config_path, "TOML configuration file");
  backfill->add_flag("--force", bf.force, "publish even when the group's rows change by more than half");

  std::string out;
  GenerateOptions go;
  auto* gen = app.add_subcommand("generate", "write a synthetic world in the native format");
  gen->add_option("--out", out, "output dir")->required();
  gen->add_option("--users", go.users, "number of users")->capture_default_str();
  gen->add_option("--creators", go.creators, "number of creators")->capture_default_str();
  gen->add_option("--items", go.items, "number of items")->capture_default_str();
  gen->add_option("--events", go.events, "number of events")->capture_default_str();
  gen->add_option("--seed", go.seed, "random seed")->capture_default_str();
  gen->add_option("--end-ts", go.end_ms,
                  "the last event's time, unix ms (default: the start of the current hour, so runs within one hour "
                  "and runs with the same --end-ts write the same files)");

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
  std::string model_url;
  auto* mlist = model->add_subcommand("list", "list model versions (* marks the current one), their state and why");
  mlist->add_option("--data", data, "data dir: its registry");
  mlist->add_option("--url", model_url, "a running server instead (GET /admin/models; also says what it has loaded)");
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
  auto* mrollback = model->add_subcommand(
      "rollback", "make the previously current version current again (from the first model: the blend ranks again)");
  mrollback->add_option("--data", data, "data dir")->required();

  auto* verify = app.add_subcommand(
      "verify", "check every kept snapshot version and model version as a server does at load (exit 1 when any is damaged)");
  verify->add_option("--data", data, "data dir")->required();

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

  auto experiment = AddExperimentCommands(app);
  auto features = AddFeatureCommands(app);
  auto simulate = AddSimulateCommand(app);
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
    // --help and --version print and exit 0; a usage error is one line on
    // stderr and exit code 2, whatever CLI11's own code for it.
    if (e.get_exit_code() == 0) return app.exit(e);
    return UsageError(e.what());
  }
  if (*backfill) return Backfill(bf);
  if (*serve) return Serve(data, host, port, config_path, batch_every);
  if (*gen) return Generate(out, go);
  if (*imp) return Import(data, format, path, config_path);
  if (*batch) return Batch(data, config_path);
  if (*ev) return Eval(eo, config_path, json_out, topk_out, report_out);
  if (*mlist && data.empty() == model_url.empty())
    return UsageError("model list: give either --data DIR (its registry) or --url URL (a running server)");
  if ((*mlist && model_url.empty()) || *mpromote || *mrollback)
    if (auto st = RequireDataDir(data); !st.ok()) return Fail(st);
  if (*mlist) return ModelList(data, model_url, model_json);
  if (*mpromote) return ModelPromote(data, model_version, config_path, force);
  if (*mrollback) return ModelRollback(data);
  if (*mimport) return ModelImport(data, import_dir);
  if (*verify) return Verify(data);
  if (*aprune) return Prune(data, config_path, /*events=*/false);
  if (*eprune) return Prune(data, config_path, /*events=*/true);
  if (const int rc = RunExperimentCommand(*experiment); rc >= 0) return rc;
  if (const int rc = RunFeatureCommand(*features); rc >= 0) return rc;
  if (const int rc = RunSimulateCommand(*simulate); rc >= 0) return rc;
  return 1;
}
