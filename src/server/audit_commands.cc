#include "server/audit_commands.h"

#include <cstdio>

#include "audit/audit_chain.h"
#include "audit/audit_verify.h"
#include "server/commands.h"
#include "store/store.h"
#include "config/config.h"

namespace affinity {
namespace {

// "SEQUENCE:HEAD" of a logged checkpoint line.
std::optional<std::pair<uint64_t, std::string>> ParseExpect(const std::string& s) {
  const size_t colon = s.find(':');
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  uint64_t seq = 0;
  for (size_t i = 0; i < colon; ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    seq = seq * 10 + uint64_t(s[i] - '0');
  }
  std::string head = s.substr(colon + 1);
  if (head.size() != 64 || head.find_first_not_of("0123456789abcdef") != std::string::npos) return std::nullopt;
  return std::make_pair(seq, head);
}

int VerifyChain(const AuditChainCommands& c) {
  if (auto st = RequireDataDir(c.data); !st.ok()) return Fail(st);
  auto config = LoadConfig(c.config_path);
  if (!config.ok()) return Fail(config.status());
  AuditVerifyOptions options;
  if (!c.expect.empty() && !(options.expect = ParseExpect(c.expect)))
    return UsageError("--expect: '" + c.expect + "' is not SEQUENCE:HEAD (a logged audit checkpoint's sequence and "
                      "64 hex digits of its head)");
  std::unique_ptr<CheckpointVerifier> key;
  if (!c.public_key.empty()) {
    auto loaded = CheckpointVerifier::Load(c.public_key);
    if (!loaded.ok()) return Fail(loaded.status());
    key = *std::move(loaded);
    options.key = key.get();
  }
  const Clock* clock = SystemClock::Default();
  options.now_ms = clock->NowMillis();
  // A secondary instance: it reads beside a running server and writes nothing to the store.
  auto store = OpenRocksStore(c.data, OpenMode::kSecondary, StoreOptionsFor(*config, clock));
  if (!store.ok()) return Fail(store.status());
  auto report = VerifyAuditChain(**store, options);
  if (!report.ok()) return Fail(report.status());
  if (!report->ok()) return Fail(absl::DataLossError("audit chain: " + report->failure));
  for (const std::string& r : report->redactions) std::printf("redacted: %s\n", r.c_str());
  std::printf("%s\n", report->Summary(key != nullptr).c_str());
  return 0;
}

int Keygen(const AuditChainCommands& c) {
  auto pub = GenerateSigningKey(c.out);
  if (!pub.ok()) return Fail(pub.status());
  std::printf("private key: %s (mode 0600; set [audit] signing_key to it; keep it outside the data dir)\n",
              c.out.c_str());
  std::printf("public key: %s (give it to `affinity audit verify --public-key`)\n", pub->c_str());
  return 0;
}

}  // namespace

std::unique_ptr<AuditChainCommands> AddAuditChainCommands(CLI::App& audit) {
  auto c = std::make_unique<AuditChainCommands>();
  c->verify = audit.add_subcommand(
      "verify", "check the audit chain against the stored records (read-only; safe beside a running server): exit 1 "
                "naming the first altered, inserted, reordered, missing or truncated record");
  c->verify->add_option("--data", c->data, "data dir")->required();
  c->verify->add_option("--public-key", c->public_key, "check checkpoints' signatures with this public key (PEM)");
  c->verify->add_option("--config", c->config_path, "TOML configuration file (audit.retention_hours: what has expired)");
  c->verify->add_option("--expect", c->expect,
                        "SEQUENCE:HEAD of a logged audit checkpoint kept off the box: the chain must hold it");
  c->keygen = audit.add_subcommand("keygen", "make an Ed25519 key pair that signs the audit chain's checkpoints");
  c->keygen->add_option("--out", c->out, "the private key file to create (mode 0600); the public key goes to FILE.pub")
      ->required();
  return c;
}

int RunAuditChainCommand(const AuditChainCommands& c) {
  if (*c.verify) return VerifyChain(c);
  if (*c.keygen) return Keygen(c);
  return -1;
}

}  // namespace affinity
