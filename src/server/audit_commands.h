// `affinity audit verify` (checks the audit chain of a data dir, read-only,
// safe beside a running server) and `affinity audit keygen` (makes the
// Ed25519 key pair that signs its checkpoints). docs/security.md, "The audit chain".
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

namespace affinity {

struct AuditChainCommands {
  CLI::App* verify = nullptr;
  CLI::App* keygen = nullptr;
  std::string data, public_key, config_path, expect, out;
};

// Registers the commands under `audit` (the `affinity audit` command).
std::unique_ptr<AuditChainCommands> AddAuditChainCommands(CLI::App& audit);
// Runs the chosen one: its exit code, or -1 when none was chosen.
int RunAuditChainCommand(const AuditChainCommands& c);

}  // namespace affinity
