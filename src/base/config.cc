#include "base/config.h"

#include "base/settings_reader.h"
#include "base/status.h"

namespace affinity {

bool IsValidActionName(std::string_view name) {
  if (name.empty() || name.size() > kMaxActionNameBytes) return false;
  for (char ch : name)
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_')) return false;
  return true;
}

absl::Status ServerOptions::Validate() const {
  auto bad = SettingError;
  if (port < 0 || port > 65535) return bad("server.port must be 0..65535");
  if (threads < 0) return bad("server.threads must be >= 0");
  if (max_body_bytes < 1024) return bad("server.max_body_bytes must be >= 1024");
  if (max_connections < 0) return bad("server.max_connections must be >= 0 (0 = half the descriptor limit)");
  if (max_connections_per_peer < 0) return bad("server.max_connections_per_peer must be >= 0 (0 = no per-peer cap)");
  if (max_in_flight < 0) return bad("server.max_in_flight must be >= 0 (0 = 4 per core)");
  if (header_timeout_ms < 1 || idle_timeout_ms < 1 || body_timeout_ms < 1)
    return bad("server.header_timeout_ms, idle_timeout_ms and body_timeout_ms must be >= 1");
  if (idempotency_window_seconds < 1 || idempotency_window_seconds > 2'592'000)
    return bad("server.idempotency_window_seconds must be 1..2592000 (30 days)");
  if (tls_cert.empty() != tls_key.empty())
    return bad(std::string("server.tls_cert and server.tls_key go together (PEM files): ") +
               (tls_cert.empty() ? "tls_key" : "tls_cert") + " is set without " +
               (tls_cert.empty() ? "tls_cert" : "tls_key") + "; set both to serve HTTPS, or neither");
  return absl::OkStatus();
}

absl::Status ServingOptions::Validate() const {
  auto bad = SettingError;
  if (deadline_ms < 1) return bad("serving.deadline_ms must be >= 1");
  if (max_candidates < 1) return bad("serving.max_candidates must be >= 1");
  if (max_anchors < 1 || max_anchors > 65535) return bad("serving.max_anchors must be 1..65535");
  if (per_creator_cap < 0) return bad("serving.per_creator_cap must be >= 0");
  if (similar_min_support < 1) return bad("serving.similar_min_support must be >= 1");
  if (snapshot_poll_ms < 10) return bad("serving.snapshot_poll_ms must be >= 10");
  if (coeng_session_weight < 0) return bad("serving.coeng_session_weight must be >= 0");
  if (!(diversity >= 0 && diversity < 1)) return bad("serving.diversity must be in [0, 1)");
  if (!(new_creator_share >= 0 && new_creator_share <= 1))
    return bad("serving.new_creator_share must be in [0, 1]");
  if (!(log_ranker_inputs_share >= 0 && log_ranker_inputs_share <= 1))
    return bad("serving.log_ranker_inputs_share must be in [0, 1]");
  if (rerank_depth < 1) return bad("serving.rerank_depth must be >= 1");
  if (diversity_window < 1) return bad("serving.diversity_window must be >= 1");
  return absl::OkStatus();
}

absl::StatusOr<ServingOptions> ServingWithOverrides(const ServingOptions& serving,
                                                    const std::vector<std::pair<std::string, ConfigValue>>& overrides) {
  AFF_ASSIGN_OR_RETURN(toml::table t, OverridesTable(overrides));
  ServingOptions s = serving;
  SettingsReader read(t);
  s.Fields(read);
  AFF_RETURN_IF_ERROR(read.Problem());
  AFF_RETURN_IF_ERROR(s.Validate());
  return s;
}

}  // namespace affinity
