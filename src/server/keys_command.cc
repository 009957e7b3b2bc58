// `affinity keys new --name N --scopes query,feedback [--rate R]`: a fresh API
// key, printed once, and the configuration line that admits it (its SHA-256,
// never the key).
#include <cstdio>

#include "access/access.h"
#include "absl/strings/str_split.h"
#include "server/admin_commands.h"
#include "server/commands.h"

namespace affinity {

std::unique_ptr<KeysCommand> AddKeysCommand(CLI::App& app) {
  auto c = std::make_unique<KeysCommand>();
  CLI::App* keys = app.add_subcommand("keys", "API keys ([auth] in the configuration)");
  keys->require_subcommand(1);
  c->create = keys->add_subcommand("new", "print a fresh API key once, and its [auth] keys line");
  c->create->add_option("--name", c->name, "the key's name (what logs, metrics and audit records call it)")->required();
  c->create->add_option("--scopes", c->scopes, "comma-separated: query, feedback, admin")->required();
  c->create->add_option("--rate", c->rate_per_s, "requests per second the key may make (0: no limit)")
      ->check(CLI::NonNegativeNumber);
  return c;
}

int RunKeysCommand(const KeysCommand& c) {
  if (!c.create || !*c.create) return -1;
  if (!IsValidActionName(c.name)) return UsageError("keys new: --name must be 1-32 characters of a-z, 0-9 and _");
  std::vector<std::string> names = absl::StrSplit(c.scopes, ',', absl::SkipWhitespace());
  for (std::string& n : names) n.erase(0, n.find_first_not_of(' ')), n.erase(n.find_last_not_of(' ') + 1);
  auto scopes = ParseScopes(names);
  if (!scopes.ok()) return UsageError("keys new: --scopes: " + std::string(scopes.status().message()));
  auto key = NewApiKey();
  if (!key.ok()) return Fail(key.status());
  std::printf("key (shown once; keep it secret): %s\n", key->c_str());
  std::printf("add to [auth] keys in the configuration:\n  %s\n",
              KeyConfigLine(c.name, *key, *scopes, c.rate_per_s).c_str());
  return 0;
}

}  // namespace affinity
