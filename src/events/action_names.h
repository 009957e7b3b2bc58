// The names of configured actions in this process: which configured name each
// custom action code stands for. Filled from the data dir's table of codes when
// a store opens (store/action_codes.h) and as new names are given codes; read by
// ActionName wherever an event is shown. Entries are only ever added.
// Thread safety: safe for concurrent use; reads take no lock.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "events/event.h"

namespace affinity {

// Records that custom code `code` names `name` in this process. Refused when the
// code already names another action, or the name has another code (two data
// dirs with different tables open in one process).
absl::Status RegisterActionName(std::string_view name, Action code);
// The code `name` has in this process, if any (built-ins excluded).
std::optional<Action> RegisteredAction(std::string_view name);
// The registered name of a custom code, or nullopt.
std::optional<std::string_view> RegisteredName(Action code);

}  // namespace affinity
