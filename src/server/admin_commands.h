// Commands that talk to a running server over HTTP:
// `affinity experiment create|list|get|report|stop` (/admin/experiments),
// `affinity features list|describe|get` (/admin/features) and `affinity
// simulate` (queries and clicks of a generated world's viewers).
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "base/clock.h"

namespace affinity {

struct ExperimentCommands {
  CLI::App* create = nullptr;
  CLI::App* list = nullptr;
  CLI::App* get = nullptr;
  CLI::App* report = nullptr;
  CLI::App* stop = nullptr;
  std::string url = "http://127.0.0.1:8080";
  std::string file, id, reason = "stopped by an operator";
};

// Registers the commands on `app`.
std::unique_ptr<ExperimentCommands> AddExperimentCommands(CLI::App& app);
// Runs the chosen one: its exit code, or -1 when none was chosen.
int RunExperimentCommand(const ExperimentCommands& c);

struct FeatureCommands {
  CLI::App* list = nullptr;
  CLI::App* describe = nullptr;
  CLI::App* get = nullptr;
  std::string url = "http://127.0.0.1:8080";
  std::string group, entity, with;
  bool json = false;  // the server's JSON as it is, instead of a table
  const Clock* clock = SystemClock::Default();  // "12 min ago" is measured against it
};
std::unique_ptr<FeatureCommands> AddFeatureCommands(CLI::App& app);
int RunFeatureCommand(const FeatureCommands& c);

// `affinity simulate`: an audience for a generated world (`affinity generate`
// wrote `world`): `queries` item queries of random viewers, each viewer
// clicking results on its favourite topics (the two most frequent among its
// recent events, as the server lists them) with a probability falling with the
// position, the clicks naming the response in context.request_id.
struct SimulateCommand {
  CLI::App* cmd = nullptr;
  std::string url = "http://127.0.0.1:8080";
  std::string world;
  int queries = 300;
  int k = 20;
  uint64_t seed = 1;
};
std::unique_ptr<SimulateCommand> AddSimulateCommand(CLI::App& app);
int RunSimulateCommand(const SimulateCommand& c);

// `affinity keys new`: a fresh API key and its configuration line
// (server/keys_command.cc).
struct KeysCommand {
  CLI::App* create = nullptr;
  std::string name, scopes;
  double rate_per_s = 0;
};
std::unique_ptr<KeysCommand> AddKeysCommand(CLI::App& app);
// -1 when `keys` was not the command.
int RunKeysCommand(const KeysCommand& c);

// GET `target` of the server at `url`: 0 with the body in *body, else 1 after
// printing why on stderr.
int FetchAdmin(const std::string& url, const std::string& target, std::string* body);

}  // namespace affinity
