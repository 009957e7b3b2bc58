// Checks of a request body that simdjson's parser leaves to its caller: a key
// given twice in one object (the parser keeps both, and a lookup would take
// the first silently), and an integer too large for 64 bits (which the parser
// refuses without saying where).
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <simdjson.h>

namespace affinity {

// The first key given twice in one object anywhere in `root`, as a message
// naming the key and where it is ("events[2].context: key 'request_id' is given
// twice"), or nullopt.
std::optional<std::string> DuplicateKey(simdjson::dom::element root);

// For a body the parser refused as a bad number: the first integer literal
// outside 64 bits and the key it belongs to ("k: 100000000000000000000 is out
// of range (...)"), or nullopt when there is none (the number is malformed).
// Also a number beyond a double's range ("weight: 1e400 is out of range").
std::optional<std::string> BigIntegerMessage(std::string_view body);

// For a body that is not UTF-8: the offset of the first character that is not
// ("request body is not valid UTF-8 (from byte 12)").
std::string InvalidUtf8Message(std::string_view body);

}  // namespace affinity
