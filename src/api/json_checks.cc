#include "api/json_checks.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <vector>

namespace affinity {
namespace {

using simdjson::dom::element;

// Where an element sits, as a chain up to the root (built into a path only
// when something is reported, so a clean body allocates nothing for it).
struct PathStep {
  const PathStep* parent = nullptr;
  std::string_view key;  // an object member's key, or
  size_t index = 0;      // an array element's index when key is empty
  bool is_index = false;
};

std::string PathOf(const PathStep* step) {
  if (step == nullptr) return "";
  std::string parent = PathOf(step->parent);
  if (step->is_index) return parent + "[" + std::to_string(step->index) + "]";
  return parent.empty() ? std::string(step->key) : parent + "." + std::string(step->key);
}

std::optional<std::string> DuplicateIn(element el, const PathStep* at) {
  if (el.is_object()) {
    simdjson::dom::object obj;
    if (el.get(obj)) return std::nullopt;
    if (obj.size() > 1) {
      std::vector<std::string_view> keys;
      keys.reserve(obj.size());
      for (auto field : obj) keys.push_back(field.key);
      std::sort(keys.begin(), keys.end());
      if (auto dup = std::adjacent_find(keys.begin(), keys.end()); dup != keys.end()) {
        const std::string where = PathOf(at);
        return (where.empty() ? "" : where + ": ") + "key '" + std::string(*dup) + "' is given twice";
      }
    }
    for (auto field : obj) {
      PathStep step{at, field.key, 0, false};
      if (auto found = DuplicateIn(field.value, &step)) return found;
    }
  } else if (el.is_array()) {
    simdjson::dom::array arr;
    if (el.get(arr)) return std::nullopt;
    size_t i = 0;
    for (auto child : arr) {
      if (child.is_object() || child.is_array()) {
        PathStep step{at, {}, i, true};
        if (auto found = DuplicateIn(child, &step)) return found;
      }
      ++i;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> DuplicateKey(element root) { return DuplicateIn(root, nullptr); }

std::string InvalidUtf8Message(std::string_view body) {
  // A valid text cut before a byte that starts a character is valid: the
  // prefixes so cut are valid up to the first bad character, and the longest
  // valid one is found by bisection (simdjson checks each).
  std::vector<size_t> cuts;
  for (size_t i = 0; i <= body.size(); ++i)
    if (i == body.size() || (static_cast<unsigned char>(body[i]) & 0xC0) != 0x80) cuts.push_back(i);
  auto first_bad = std::partition_point(cuts.begin(), cuts.end(),
                                        [&](size_t cut) { return simdjson::validate_utf8(body.data(), cut); });
  const size_t good = first_bad == cuts.begin() ? 0 : *(first_bad - 1);
  return "request body is not valid UTF-8 (from byte " + std::to_string(good) + ")";
}

std::optional<std::string> BigIntegerMessage(std::string_view body) {
  std::string last_key;  // the last string followed by ':'
  bool after_colon = false;
  for (size_t i = 0; i < body.size();) {
    const char c = body[i];
    if (c == '"') {
      size_t j = i + 1;
      while (j < body.size() && body[j] != '"') j += body[j] == '\\' ? 2 : 1;
      const std::string_view text = body.substr(i + 1, std::min(j, body.size()) - i - 1);
      size_t k = j + 1;
      while (k < body.size() && std::isspace(static_cast<unsigned char>(body[k]))) ++k;
      if (k < body.size() && body[k] == ':') last_key = std::string(text);
      after_colon = false;
      i = j + 1;
      continue;
    }
    if (c == '-' || std::isdigit(static_cast<unsigned char>(c))) {
      size_t j = i;
      while (j < body.size() && (std::isdigit(static_cast<unsigned char>(body[j])) || body[j] == '-' ||
                                 body[j] == '+' || body[j] == '.' || body[j] == 'e' || body[j] == 'E'))
        ++j;
      const std::string_view number = body.substr(i, j - i);
      const bool integral = number.find_first_of(".eE") == std::string_view::npos;
      const size_t digits = number.size() - (number[0] == '-' ? 1 : 0);
      // What the parser refuses: beyond 2^64 - 1 (20 digits) or below -2^63 (19).
      const std::string_view magnitude = number.substr(number[0] == '-' ? 1 : 0);
      const std::string_view limit = number[0] == '-' ? "9223372036854775808" : "18446744073709551615";
      const bool big_integer = integral && (digits > limit.size() || (digits == limit.size() && magnitude > limit));
      const bool big_real = !integral && std::isinf(std::strtod(std::string(number).c_str(), nullptr));
      if (big_integer || big_real) {
        const std::string shown = number.size() > 40 ? std::string(number.substr(0, 40)) + "..." : std::string(number);
        const std::string what = after_colon && !last_key.empty() ? last_key : "a number";
        return what + ": " + shown + " is out of range (" +
               (big_integer ? "an integer here must fit in 64 bits" : "a number here must fit in a double") + ")";
      }
      after_colon = false;
      i = j;
      continue;
    }
    if (c == ':') after_colon = true;
    else if (!std::isspace(static_cast<unsigned char>(c))) after_colon = false;
    ++i;
  }
  return std::nullopt;
}

}  // namespace affinity
