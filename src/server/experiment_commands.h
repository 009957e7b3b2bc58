// `affinity experiment create|list|get|report|stop`: the experiments of a
// running server, over its HTTP API (POST/GET /admin/experiments...).
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

}  // namespace affinity
