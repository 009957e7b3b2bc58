#include "store/action_codes.h"

#include <algorithm>
#include <charconv>
#include <mutex>
#include <set>
#include <vector>

#include "base/status.h"
#include "events/action_names.h"

namespace affinity {
namespace {
// Orders assignments in this process (a name's code is read, chosen and written
// as one step).
std::mutex& AssignMutex() {
  static std::mutex mu;
  return mu;
}
}  // namespace

std::string EncodeActionCodes(const ActionCodeTable& table) {
  std::vector<std::pair<int, std::string>> by_code;
  for (const auto& [name, code] : table) by_code.emplace_back(int(code), name);
  std::sort(by_code.begin(), by_code.end());
  std::string out;
  for (const auto& [code, name] : by_code) out += std::to_string(code) + " " + name + "\n";
  return out;
}

absl::StatusOr<ActionCodeTable> DecodeActionCodes(std::string_view text) {
  ActionCodeTable table;
  std::set<int> codes;
  while (!text.empty()) {
    const size_t eol = text.find('\n');
    if (eol == std::string_view::npos) return absl::DataLossError("meta/actions: the last line is cut short");
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol + 1);
    const size_t sp = line.find(' ');
    int code = -1;
    if (sp == std::string_view::npos || std::from_chars(line.data(), line.data() + sp, code).ptr != line.data() + sp ||
        code < kFirstCustomAction || code > kMaxActionCode)
      return absl::DataLossError("meta/actions: '" + std::string(line) + "' is not 'code name'");
    std::string name(line.substr(sp + 1));
    if (!IsValidActionName(name)) return absl::DataLossError("meta/actions: '" + name + "' is not an action name");
    if (!codes.insert(code).second || !table.emplace(name, Action(code)).second)
      return absl::DataLossError("meta/actions: '" + std::string(line) + "' repeats a code or a name");
  }
  return table;
}

absl::StatusOr<ActionCodeTable> ReadActionCodes(const Store& store) {
  AFF_ASSIGN_OR_RETURN(std::optional<std::string> stored, store.GetMeta(kMetaActionCodes));
  if (!stored) return ActionCodeTable();
  return DecodeActionCodes(*stored);
}

absl::Status LoadActionCodes(const Store& store) {
  AFF_ASSIGN_OR_RETURN(ActionCodeTable table, ReadActionCodes(store));
  for (const auto& [name, code] : table) AFF_RETURN_IF_ERROR(RegisterActionName(name, code));
  return absl::OkStatus();
}

absl::StatusOr<Action> AssignActionCode(Store& store, std::string_view name) {
  if (!IsValidActionName(name) || ParseBuiltinAction(name))
    return absl::InvalidArgumentError("'" + std::string(name) + "' cannot be a configured action's name");
  std::lock_guard<std::mutex> lock(AssignMutex());
  AFF_ASSIGN_OR_RETURN(ActionCodeTable table, ReadActionCodes(store));
  if (auto it = table.find(name); it != table.end()) return it->second;
  std::set<int> taken;
  for (const auto& [n, code] : table) taken.insert(int(code));
  // The code this process already gives the name, when the data dir has it free;
  // else the first code free in both.
  std::optional<Action> code = RegisteredAction(name);
  if (code && taken.count(int(*code))) code.reset();
  for (int c = kFirstCustomAction; !code && c <= kMaxActionCode; ++c)
    if (!taken.count(c) && !RegisteredName(Action(c))) code = Action(c);
  if (!code)
    return absl::ResourceExhaustedError("no action code is left for '" + std::string(name) +
                                        "': the data dir has given out every one");
  table.emplace(std::string(name), *code);
  AFF_RETURN_IF_ERROR(store.PutMeta(kMetaActionCodes, EncodeActionCodes(table)));
  AFF_RETURN_IF_ERROR(RegisterActionName(name, *code));
  return *code;
}

}  // namespace affinity
