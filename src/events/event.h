// The feedback event: (offset, ts, viewer, entity, action, weight, context).
// Its binary encoding is the value format of the event log (docs/storage.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/config.h"
#include "base/ids.h"

namespace affinity {

enum class Action : uint8_t {
  kImpression = 0,
  kClick = 1,
  kLike = 2,
  kPlay = 3,
  kShare = 4,
  kComment = 5,
  kFollow = 6,
  kUnfollow = 7,
  kHide = 8,
};
inline constexpr int kNumActions = 9;

std::string_view ActionName(Action a);
std::optional<Action> ParseAction(std::string_view s);
// "impression, click, ..." for error messages.
std::string ActionList();
double DefaultWeight(const ActionWeights& w, Action a);
// True for actions that express interest (used as implicit positive feedback).
inline bool IsPositive(Action a) {
  return a != Action::kImpression && a != Action::kUnfollow && a != Action::kHide;
}

struct Event {
  uint64_t offset = 0;   // position in the log, assigned on append
  int64_t ts = 0;        // unix ms
  Ref viewer;            // always a user
  Ref entity;
  Action action = Action::kClick;
  float weight = 1.0f;
  std::string context;   // the raw JSON object, "" when absent
};

// Binary codec of the event log's values.
std::string EncodeEvent(const Event& e);
bool DecodeEvent(std::string_view data, Event* e);  // offset is not encoded

}  // namespace affinity
