#include "events/action_names.h"

#include <array>
#include <atomic>
#include <mutex>

namespace affinity {
namespace {

// One slot per code; a slot, once set, never changes (the strings live as long
// as the process), so readers load it without a lock.
struct NameTable {
  std::array<std::atomic<const std::string*>, kMaxActionCode + 1> names{};
  std::mutex write_mu;
};

NameTable& Table() {
  static NameTable* table = new NameTable();  // never destroyed: read until exit
  return *table;
}

}  // namespace

std::optional<Action> RegisteredAction(std::string_view name) {
  NameTable& t = Table();
  for (int c = kFirstCustomAction; c <= kMaxActionCode; ++c) {
    const std::string* n = t.names[size_t(c)].load(std::memory_order_acquire);
    if (n && *n == name) return Action(c);
  }
  return std::nullopt;
}

std::optional<std::string_view> RegisteredName(Action code) {
  const std::string* n = Table().names[uint8_t(code)].load(std::memory_order_acquire);
  if (!n) return std::nullopt;
  return std::string_view(*n);
}

absl::Status RegisterActionName(std::string_view name, Action code) {
  if (!IsCustom(code)) return absl::InvalidArgumentError("action code " + std::to_string(int(code)) + " is built in");
  if (!IsValidActionName(name)) return absl::InvalidArgumentError("'" + std::string(name) + "' is not an action name");
  NameTable& t = Table();
  std::lock_guard<std::mutex> lock(t.write_mu);
  const std::string* have = t.names[uint8_t(code)].load(std::memory_order_acquire);
  if (have) {
    if (*have == name) return absl::OkStatus();
    return absl::FailedPreconditionError("action code " + std::to_string(int(code)) + " names '" + *have +
                                         "' in this process, not '" + std::string(name) + "'");
  }
  if (auto other = RegisteredAction(name))
    return absl::FailedPreconditionError("action '" + std::string(name) + "' has code " +
                                         std::to_string(int(*other)) + " in this process, not " +
                                         std::to_string(int(code)));
  t.names[uint8_t(code)].store(new std::string(name), std::memory_order_release);
  return absl::OkStatus();
}

}  // namespace affinity
