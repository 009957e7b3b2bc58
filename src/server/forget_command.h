// `affinity forget --data DIR --viewer ID [--config FILE]`: forgets a person
// in the data dir of a stopped server (admin/forget_service.h; a running
// server's is POST /admin/viewers/{id}/forget). docs/security.md, "Forget".
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

namespace affinity {

struct ForgetCommand {
  CLI::App* cmd = nullptr;
  std::string data, viewer, config_path;
};

std::unique_ptr<ForgetCommand> AddForgetCommand(CLI::App& app);
// Its exit code, or -1 when `forget` was not the command.
int RunForgetCommand(const ForgetCommand& c);

}  // namespace affinity
