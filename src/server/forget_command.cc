#include "server/forget_command.h"

#include <cstdio>
#include <filesystem>

#include "admin/forget_service.h"
#include "audit/audit_chain.h"
#include "config/config.h"
#include "server/commands.h"
#include "state/checkpointer.h"

namespace affinity {

std::unique_ptr<ForgetCommand> AddForgetCommand(CLI::App& app) {
  auto c = std::make_unique<ForgetCommand>();
  c->cmd = app.add_subcommand("forget",
                              "remove what the data dir holds about a person (stop the server first; a running "
                              "server's is POST /admin/viewers/{id}/forget)");
  c->cmd->add_option("--data", c->data, "data dir")->required();
  c->cmd->add_option("--viewer", c->viewer, "the person's id (a viewer, or any entity)")->required();
  c->cmd->add_option("--config", c->config_path, "TOML configuration file (retentions, [audit] signing_key)");
  return c;
}

int RunForgetCommand(const ForgetCommand& c) {
  if (!*c.cmd) return -1;
  auto cfg = LoadConfig(c.config_path);
  if (!cfg.ok()) return Fail(cfg.status());
  if (!std::filesystem::exists(c.data + "/db/CURRENT"))
    return Fail(absl::NotFoundError("forget: no affinity store in " + c.data));
  auto store = OpenRocksStore(c.data, OpenMode::kPrimary, StoreOptionsFor(*cfg, SystemClock::Default()));
  if (!store.ok() || !(*store)->ReadOnlyReason().empty())
    return Fail(absl::FailedPreconditionError(
        "forget: cannot open " + c.data + " for writing (a running server holds it, or its volume is full): "
        "stop the server, or call POST /admin/viewers/{id}/forget on it" +
        (store.ok() ? "" : " (" + std::string(store.status().message()) + ")")));
  std::shared_ptr<const CheckpointSigner> signer;
  if (!cfg->audit.signing_key.empty()) {
    auto loaded = CheckpointSigner::Load(cfg->audit.signing_key, c.data);
    if (!loaded.ok()) return Fail(loaded.status());
    signer = *std::move(loaded);
  }
  absl::StatusOr<ForgetOutcome> outcome;
  {
    AuditLog audit(store->get(), 1000, AuditChainOptions{nullptr, 60'000, signer});
    ForgetService::Parts parts;
    parts.store = store->get();
    parts.audit = &audit;
    // The checkpoint held them: without it the next start replays the log, which no longer does.
    parts.checkpoint = [&]() -> absl::StatusOr<std::string> {
      std::error_code ec;
      const bool removed = std::filesystem::remove(CheckpointPath(c.data), ec);
      if (ec) return absl::InternalError("cannot remove " + CheckpointPath(c.data) + ": " + ec.message());
      return std::string(removed ? "removed" : "none");
    };
    parts.start_batch = [] { return std::string("not started: run `affinity batch` before serving"); };
    ForgetService service(std::move(parts));
    outcome = service.Forget(c.viewer);
  }  // the audit log's last checkpoint covers the redactions
  if (!outcome.ok()) return Fail(outcome.status());
  JsonWriter w;
  WriteForgetOutcome(w, *outcome);
  std::printf("%s\n", w.Release().c_str());
  return 0;
}

}  // namespace affinity
