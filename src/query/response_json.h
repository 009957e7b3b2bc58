// The response of POST /affinity/query as JSON (docs/openapi.yaml), in two forms:
//   kWire:  what the client receives; explanations as asked (top three, or
//           every feature with base and raw_score for "full").
//   kAudit: what the audit record keeps (audit/audit_record.h): every
//           explanation in full but compact — its top three features, then every
//           attribution and input value as float32 base64 (`attributions_f32`,
//           `inputs_f32`) — and, with `with_inputs`, each result's ranker inputs
//           (`ranker_inputs_f32`, the training rows of `affinity batch`).
// Thread safety: pure.
#pragma once

#include <functional>
#include <string_view>

#include "base/json_writer.h"
#include "query/query.h"

namespace affinity {

enum class ResponseForm { kWire, kAudit };

void WriteResponseJson(const QueryResponse& response, ExplainMode explain, ResponseForm form, bool with_inputs,
                       JsonWriter& w);

// Writes `top_features`: the attributions by absolute size, each with its name
// and value; `top_only` stops after three or at the first zero.
void WriteTopFeatures(const float* values, const float* contributions, size_t n, bool top_only,
                      const std::function<std::string_view(size_t)>& name, JsonWriter& w);

}  // namespace affinity
