// The data dir's table of configured actions' codes: which u8 code each
// configured action (`[actions] purchase = 3.0`) has in the event log. A name
// gets a code the first time an event of it is accepted, and keeps it for good:
// reordering the configuration, adding actions or removing one never changes
// what a code in the log means (docs/storage.md, `meta/actions`).
// Thread safety: safe for concurrent use.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "events/event.h"
#include "store/store.h"

namespace affinity {

// The table as stored: name -> code.
using ActionCodeTable = std::map<std::string, Action, std::less<>>;

// Reads the data dir's table (empty when no configured action was ever used).
absl::StatusOr<ActionCodeTable> ReadActionCodes(const Store& store);
// Reads the table and records its names in this process's action names, so that
// events of configured actions are shown by name (events/action_names.h).
absl::Status LoadActionCodes(const Store& store);
// The code of configured action `name`: the one the data dir holds, or the first
// code free both there and in this process, written (fsync) before returning.
// REQUIRES: a primary store; `name` a valid action name, not a built-in one.
absl::StatusOr<Action> AssignActionCode(Store& store, std::string_view name);

// The stored form: one "code name" line per action, in code order.
std::string EncodeActionCodes(const ActionCodeTable& table);
absl::StatusOr<ActionCodeTable> DecodeActionCodes(std::string_view text);

inline constexpr const char* kMetaActionCodes = "actions";

}  // namespace affinity
