// Names and ids: the safe alphabet every name and id is checked against
// before it touches a file name, SQL or a NATS subject.
//
// Names (namespaces, plugin, actor type, command and event names):
//   1..64 characters of [A-Za-z0-9_-].
// Actor ids: the same alphabet, 1..128 characters.
// A dot, '*', '>', '/', white space and anything outside ASCII are refused, so
// a name or an id is always a single NATS subject token and a safe file name.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace aether {

inline constexpr size_t kMaxNameLength = 64;
inline constexpr size_t kMaxIdLength = 128;

// True iff `s` is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool is_valid_utf8(std::string_view s);

// Returns an empty string if `name` is a valid name, else why it is not,
// e.g. "contains '.' at position 3 (allowed: A-Z a-z 0-9 _ -)".
std::string check_name(std::string_view name);

// Like check_name for actor ids (longer limit).
std::string check_id(std::string_view id);

// For messages: `s` quoted, with control and non-ASCII bytes escaped, and cut
// after 40 characters.
std::string quote_for_message(std::string_view s);

}  // namespace aether
