// Commands that talk to a running server's admin API over HTTP:
// `affinity experiment create|list|get|report|stop` (/admin/experiments) and
// `affinity features list|describe|get` (/admin/features).
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

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
};
std::unique_ptr<FeatureCommands> AddFeatureCommands(CLI::App& app);
int RunFeatureCommand(const FeatureCommands& c);

}  // namespace affinity
