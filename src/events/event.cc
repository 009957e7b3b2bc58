#include "events/event.h"

#include <simdjson.h>

#include <cstring>

#include "events/action_names.h"

namespace affinity {
namespace {
constexpr std::string_view kNames[kNumBuiltinActions] = {
    "impression", "click", "like", "play", "share", "comment", "follow", "unfollow", "hide"};

template <typename T>
void Put(std::string& out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out.append(buf, sizeof(T));
}
template <typename T>
bool Get(std::string_view& in, T* v) {
  if (in.size() < sizeof(T)) return false;
  std::memcpy(v, in.data(), sizeof(T));
  in.remove_prefix(sizeof(T));
  return true;
}
}  // namespace

std::string_view ActionName(Action a) {
  if (!IsCustom(a)) return kNames[int(a)];
  return RegisteredName(a).value_or("unknown");
}

std::optional<Action> ParseBuiltinAction(std::string_view s) {
  for (int i = 0; i < kNumBuiltinActions; ++i)
    if (kNames[i] == s) return Action(i);
  return std::nullopt;
}

std::optional<Action> ParseAction(std::string_view s) {
  if (auto a = ParseBuiltinAction(s)) return a;
  return RegisteredAction(s);
}

std::string ActionList() {
  std::string out;
  for (int i = 0; i < kNumBuiltinActions; ++i) {
    if (i) out += ", ";
    out += kNames[i];
  }
  return out;
}

double DefaultWeight(const ActionWeights& w, Action a) {
  switch (a) {
    case Action::kImpression: return w.impression;
    case Action::kClick: return w.click;
    case Action::kLike: return w.like;
    case Action::kPlay: return w.play;
    case Action::kShare: return w.share;
    case Action::kComment: return w.comment;
    case Action::kFollow: return w.follow;
    case Action::kUnfollow: return w.unfollow;
    case Action::kHide: return w.hide;
  }
  if (auto name = RegisteredName(a))
    for (const auto& c : w.custom)
      if (c.name == *name) return c.weight;
  return 0;
}

// Layout (little endian): u8 version=1, i64 ts, u32 viewer, u32 entity, u8 action
// (a built-in's code, or a configured action's from the data dir's table),
// f32 weight, u32 context length, context bytes.
std::string EncodeEvent(const Event& e) {
  std::string out;
  out.reserve(26 + e.context.size());
  Put<uint8_t>(out, 1);
  Put<int64_t>(out, e.ts);
  Put<uint32_t>(out, e.viewer.bits);
  Put<uint32_t>(out, e.entity.bits);
  Put<uint8_t>(out, uint8_t(e.action));
  Put<float>(out, e.weight);
  Put<uint32_t>(out, uint32_t(e.context.size()));
  out.append(e.context);
  return out;
}

bool DecodeEvent(std::string_view in, Event* e) {
  uint8_t version, action;
  uint32_t viewer, entity, ctx_len;
  if (!Get(in, &version) || version != 1) return false;
  if (!Get(in, &e->ts) || !Get(in, &viewer) || !Get(in, &entity) || !Get(in, &action) ||
      !Get(in, &e->weight) || !Get(in, &ctx_len))
    return false;
  if (in.size() != ctx_len) return false;
  e->viewer = Ref::FromBits(viewer);
  e->entity = Ref::FromBits(entity);
  e->action = Action(action);
  e->context.assign(in.data(), in.size());
  e->request_id = RequestIdInContext(e->context);
  return true;
}

std::string RequestIdInContext(std::string_view context) {
  if (context.find("request_id") == std::string_view::npos) return "";
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view id;
  if (parser.parse(context.data(), context.size()).get(doc) || doc["request_id"].get(id)) return "";
  return std::string(id);
}

}  // namespace affinity
