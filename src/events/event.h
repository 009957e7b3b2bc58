// The feedback event: (offset, ts, viewer, entity, action, weight, context).
// Its binary encoding is the value format of the event log (docs/storage.md).
// The context's request_id (the response an event is about) is read out of it
// once, where an event is built from a request (state/ingestor.h) or decoded
// from the log, and kept beside it; it is not encoded separately.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/config.h"
#include "base/ids.h"

namespace affinity {

// An action's code in the event log. Codes 0-8 are the built-in actions; codes
// from kFirstCustomAction on are actions named in the configuration's [actions]
// (`purchase = 3.0`), each data dir keeping its own table of their codes so that
// a code never changes meaning (store/action_codes.h). Every u8 is a code.
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
inline constexpr int kNumBuiltinActions = 9;
inline constexpr int kFirstCustomAction = kNumBuiltinActions;
inline constexpr int kMaxActionCode = 255;

inline bool IsCustom(Action a) { return uint8_t(a) >= kFirstCustomAction; }

// The action's name: a built-in's, or the configured name its code has in this
// process's table of action names (events/action_names.h); "unknown" for a code
// no table names.
std::string_view ActionName(Action a);
// A built-in action, or a configured one whose name this process knows.
std::optional<Action> ParseAction(std::string_view s);
std::optional<Action> ParseBuiltinAction(std::string_view s);
// "impression, click, ..., hide" for error messages.
std::string ActionList();
// The default weight of a built-in action (a configured action's is in
// ActionWeights::custom, found by name).
double DefaultWeight(const ActionWeights& w, Action a);
// True for actions that may express interest (implicit positive feedback when
// their weight is > 0). A configured action's weight decides its sign: its
// events carry the configured weight (or an explicit one of the same sign).
inline bool IsPositive(Action a) {
  return a != Action::kImpression && a != Action::kUnfollow && a != Action::kHide;
}
// True when the event hides its entity from the viewer: a hide, or a configured
// action with a negative weight (negative feedback, as a hide is).
inline bool Hides(Action a, float weight) { return a == Action::kHide || (IsCustom(a) && weight < 0); }

struct Event {
  uint64_t offset = 0;   // position in the log, assigned on append
  int64_t ts = 0;        // unix ms
  Ref viewer;            // always a user
  Ref entity;
  Action action = Action::kClick;
  float weight = 1.0f;
  std::string context;   // the raw JSON object, "" when absent
  std::string request_id;  // context.request_id: RequestIdInContext(context)
};

// context.request_id when `context` is a JSON object whose request_id is a
// string, else "".
std::string RequestIdInContext(std::string_view context);

// Binary codec of the event log's values.
std::string EncodeEvent(const Event& e);
bool DecodeEvent(std::string_view data, Event* e);  // offset is not encoded; request_id is read from the context

}  // namespace affinity
