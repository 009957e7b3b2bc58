// The affinity command line: the commands and their flags (CLI11); each
// command's body is in server/*_command(s).cc and server/serve.cc.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "server/commands.h"
#include "server/admin_commands.h"
#include "server/audit_commands.h"
#include "server/forget_command.h"

namespace affinity {
namespace {

// What the command line sets: the options' values (several commands share
// --data and --config) and the commands, which CLI11 marks when chosen.
struct CommandLine {
  std::string data, host, config_path, batch_every;
  int port = -1;
  BackfillArgs bf;
  std::string out;
  GenerateOptions go;
  std::string format, path;
  bool model_json = false, force = false;
  std::string model_version, model_url, import_dir;
  EvalOptions eo;
  std::string json_out, topk_out, report_out;
  CLI::App* serve = nullptr;
  bool insecure_listen = false;
  CLI::App* backfill = nullptr;
  CLI::App* gen = nullptr;
  CLI::App* imp = nullptr;
  CLI::App* batch = nullptr;
  CLI::App* mlist = nullptr;
  CLI::App* mpromote = nullptr;
  CLI::App* mimport = nullptr;
  CLI::App* mrollback = nullptr;
  CLI::App* verify = nullptr;
  CLI::App* aprune = nullptr;
  CLI::App* eprune = nullptr;
  CLI::App* ev = nullptr;
  std::unique_ptr<ExperimentCommands> experiment;
  std::unique_ptr<FeatureCommands> features;
  std::unique_ptr<SimulateCommand> simulate;
  std::unique_ptr<KeysCommand> keys;
  std::unique_ptr<AuditChainCommands> audit_chain;
  std::unique_ptr<ForgetCommand> forget;
};

// `affinity serve` and `affinity backfill`.
void AddServeCommands(CLI::App& app, CommandLine& c) {
  c.serve = app.add_subcommand("serve", "serve the HTTP API over a data dir");
  c.serve->add_option("--data", c.data, "data dir")->required();
  c.serve->add_option("--host", c.host, "listen address (default 127.0.0.1)");
  c.serve->add_option("--port", c.port, "listen port (default 8080; 0 picks a free one)")->check(CLI::Range(0, 65535));
  c.serve->add_option("--config", c.config_path, "TOML configuration file");
  c.serve->add_flag("--insecure-listen", c.insecure_listen,
                    "serve on a non-loopback address without [auth] keys (anyone who reaches the port can call every route)");
  c.serve->add_option("--batch-every", c.batch_every,
                      "run the batch pipeline beside the server on this schedule (e.g. 30s, 15m, 1h), never two at once");

  BackfillArgs& bf = c.bf;
  c.backfill = app.add_subcommand("backfill", "recompute one batch feature group from the event log and publish it");
  c.backfill->add_option("--data", bf.data, "data dir")->required();
  c.backfill->add_option("--group", bf.group, "the feature group (popularity, graph)")->required();
  c.backfill->add_option("--from", bf.from_ms, "only events at or after this time (unix ms)")->check(CLI::NonNegativeNumber);
  c.backfill->add_option("--to", bf.to_ms, "only events at or before this time (unix ms)")->check(CLI::NonNegativeNumber);
  c.backfill->add_option("--config", bf.config_path, "TOML configuration file");
  c.backfill->add_flag("--force", bf.force, "publish even when the group's rows change by more than half");
}

// `affinity generate`, `affinity import` and `affinity batch`.
void AddDataCommands(CLI::App& app, CommandLine& c) {
  GenerateOptions& go = c.go;
  c.gen = app.add_subcommand("generate", "write a synthetic world in the native format");
  c.gen->add_option("--out", c.out, "output dir")->required();
  c.gen->add_option("--users", go.users, "number of users")->capture_default_str();
  c.gen->add_option("--creators", go.creators, "number of creators")->capture_default_str();
  c.gen->add_option("--items", go.items, "number of items")->capture_default_str();
  c.gen->add_option("--events", go.events, "number of events")->capture_default_str();
  c.gen->add_option("--seed", go.seed, "random seed")->capture_default_str();
  c.gen->add_option("--end-ts", go.end_ms,
                    "the last event's time, unix ms (default: the start of the current hour, so runs within one hour "
                    "and runs with the same --end-ts write the same files)");

  c.imp = app.add_subcommand("import", "load a dataset into a data dir");
  c.imp->add_option("--data", c.data, "data dir")->required();
  c.imp->add_option("--format", c.format, "native (alias synthetic), hetrec-lastfm, lightgcn or snap-edges")->required();
  c.imp->add_option("path", c.path, "file or folder to import")->required();
  c.imp->add_option("--config", c.config_path, "TOML configuration file (action weights, events.retention_hours)");
  c.batch = app.add_subcommand("batch", "run the offline pipeline once and publish a snapshot");
  c.batch->add_option("--data", c.data, "data dir")->required();
  c.batch->add_option("--config", c.config_path, "TOML configuration file");
}

// `affinity model list|promote|import|rollback`.
void AddModelCommands(CLI::App& app, CommandLine& c) {
  auto* model = app.add_subcommand("model", "the learned ranker's model registry");
  model->require_subcommand(1);
  c.mlist = model->add_subcommand("list", "list model versions (* marks the current one), their state and why");
  c.mlist->add_option("--data", c.data, "data dir: its registry");
  c.mlist->add_option("--url", c.model_url, "a running server instead (GET /admin/models; also says what it has loaded)");
  c.mlist->add_flag("--json", c.model_json, "print the registry as JSON");
  c.mpromote = model->add_subcommand("promote", "make a version current (refused when it fails the gate)");
  c.mpromote->add_option("--data", c.data, "data dir")->required();
  c.mpromote->add_option("version", c.model_version, "version, e.g. m000002")->required();
  c.mpromote->add_option("--config", c.config_path, "TOML configuration file (ranker.gate_tolerance)");
  c.mpromote->add_flag("--force", c.force, "skip the gate");
  c.mimport = model->add_subcommand("import", "register a model saved by `eval --ranker learned --save-model DIR`");
  c.mimport->add_option("--data", c.data, "data dir")->required();
  c.mimport->add_option("dir", c.import_dir, "the saved model's dir")->required();
  c.mrollback = model->add_subcommand(
      "rollback", "make the previously current version current again (from the first model: the blend ranks again)");
  c.mrollback->add_option("--data", c.data, "data dir")->required();
}

// `affinity verify`, `affinity audit prune` and `affinity events prune`.
void AddUpkeepCommands(CLI::App& app, CommandLine& c) {
  c.verify = app.add_subcommand(
      "verify", "check every kept snapshot version and model version as a server does at load (exit 1 when any is damaged)");
  c.verify->add_option("--data", c.data, "data dir")->required();

  auto add_prune = [&](const char* name, const char* help, const char* what) {
    auto* part = app.add_subcommand(name, help);
    part->require_subcommand(1);
    const std::string setting = std::string(name) + ".retention_hours";
    auto* prune = part->add_subcommand(
        "prune", std::string("remove ") + what + " older than " + setting + " from disk now (stop the server first)");
    prune->add_option("--data", c.data, "data dir")->required();
    prune->add_option("--config", c.config_path, "TOML configuration file (" + setting + ")");
    return prune;
  };
  c.aprune = add_prune("audit", "the audit log", "audit records");
  c.audit_chain = AddAuditChainCommands(*c.aprune->get_parent());
  c.eprune = add_prune("events", "the event log", "events");
  c.forget = AddForgetCommand(app);
}

// `affinity eval`.
void AddEvalCommand(CLI::App& app, CommandLine& c) {
  EvalOptions& eo = c.eo;
  auto* ev = c.ev = app.add_subcommand("eval", "offline evaluation through the serving code path");
  ev->add_option("--format", eo.format, "lightgcn, native, snap-edges or hetrec-lastfm")->required();
  ev->add_option("--target", eo.target, "hetrec-lastfm: creators (held-out plays) or users (held-out friendships)");
  ev->add_option("--train", eo.train, "training file (lightgcn, snap-edges) or dataset folder (native, hetrec-lastfm)")
      ->required();
  ev->add_option("--test", eo.test, "test file (lightgcn)");
  ev->add_option("--k", eo.k, "cut-off")->capture_default_str();
  ev->add_option("--json", c.json_out, "write metrics as JSON");
  ev->add_option("--topk", c.topk_out, "write each test user's list: user item item ...");
  ev->add_option("--report", c.report_out, "write an HTML report with plots");
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
  ev->add_option("--config", c.config_path, "TOML configuration file");
  ev->add_option("--scratch", eo.scratch_dir, "where to build the evaluation world (default: a temp dir)");
}

// Runs the command the parse chose: its exit code.
int RunCommand(const CommandLine& c) {
  if (*c.backfill) return Backfill(c.bf);
  if (*c.serve) return Serve(c.data, c.host, c.port, c.config_path, c.batch_every, c.insecure_listen);
  if (*c.gen) return Generate(c.out, c.go);
  if (*c.imp) return Import(c.data, c.format, c.path, c.config_path);
  if (*c.batch) return Batch(c.data, c.config_path);
  if (*c.ev) return Eval(c.eo, c.config_path, c.json_out, c.topk_out, c.report_out);
  if (*c.mlist && c.data.empty() == c.model_url.empty())
    return UsageError("model list: give either --data DIR (its registry) or --url URL (a running server)");
  if ((*c.mlist && c.model_url.empty()) || *c.mpromote || *c.mrollback)
    if (auto st = RequireDataDir(c.data); !st.ok()) return Fail(st);
  if (*c.mlist) return ModelList(c.data, c.model_url, c.model_json);
  if (*c.mpromote) return ModelPromote(c.data, c.model_version, c.config_path, c.force);
  if (*c.mrollback) return ModelRollback(c.data);
  if (*c.mimport) return ModelImport(c.data, c.import_dir);
  if (*c.verify) return Verify(c.data);
  if (*c.aprune) return Prune(c.data, c.config_path, /*events=*/false);
  if (*c.eprune) return Prune(c.data, c.config_path, /*events=*/true);
  if (const int rc = RunAuditChainCommand(*c.audit_chain); rc >= 0) return rc;
  if (const int rc = RunForgetCommand(*c.forget); rc >= 0) return rc;
  if (const int rc = RunExperimentCommand(*c.experiment); rc >= 0) return rc;
  if (const int rc = RunFeatureCommand(*c.features); rc >= 0) return rc;
  if (const int rc = RunSimulateCommand(*c.simulate); rc >= 0) return rc;
  if (const int rc = RunKeysCommand(*c.keys); rc >= 0) return rc;
  return 1;
}

}  // namespace
}  // namespace affinity

int main(int argc, char** argv) {
  using namespace affinity;
  spdlog::set_pattern("%v");
  CLI::App app{"affinity: explained recommendations of people, creators and items"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "affinity " AFFINITY_VERSION);

  // The commands in the order --help lists them.
  CommandLine c;
  AddServeCommands(app, c);
  AddDataCommands(app, c);
  AddModelCommands(app, c);
  AddUpkeepCommands(app, c);
  c.experiment = AddExperimentCommands(app);
  c.features = AddFeatureCommands(app);
  c.simulate = AddSimulateCommand(app);
  c.keys = AddKeysCommand(app);
  AddEvalCommand(app, c);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version print and exit 0; a usage error is one line on
    // stderr and exit code 2, whatever CLI11's own code for it.
    if (e.get_exit_code() == 0) return app.exit(e);
    return UsageError(e.what());
  }
  return RunCommand(c);
}
