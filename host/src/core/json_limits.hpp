// Limits on JSON text from outside, checked before any JSON tree is built:
// nesting depth (a JSON library's recursive walks - dump, copy, compare - use
// one stack frame per level, so a document nested 70,000 deep overflows the
// stack) and UTF-8 validity (a JSON library throws on strings that are not).
// A linear scan without recursion or allocation; no JSON library in sight.
#pragma once

#include <cstddef>
#include <string_view>

#include "core/status.hpp"

namespace aether {

// The default of api.max_json_depth: request bodies and NATS command messages.
inline constexpr size_t kDefaultMaxJsonDepth = 64;
// The largest api.max_json_depth a configuration may set.
inline constexpr size_t kMaxConfigurableJsonDepth = 1000;
// What a plugin may emit (event payloads, views) and what the runtime passes
// to a plugin: fixed, above any configurable request limit.
inline constexpr size_t kMaxPluginJsonDepth = 1024;
// Stored records (commit messages, event rows, notifications) read back: a
// plugin's payload plus the few levels of the commit message around it.
inline constexpr size_t kMaxStoredJsonDepth = kMaxPluginJsonDepth + 8;

// Returns the nesting depth of `text`: the largest number of '{' and '[' open
// at once, outside strings (escapes honoured). Stops reading once the depth
// exceeds `limit` and then returns limit + 1. Does not check that `text` is
// valid JSON: a parser does that afterwards, on text known to be shallow.
size_t json_depth(std::string_view text, size_t limit);

// Returns the offset of the first byte of `text` that is not part of a
// well-formed UTF-8 sequence (overlong forms, surrogates and code points above
// U+10FFFF are not), or std::string_view::npos when all of it is.
size_t invalid_utf8_at(std::string_view text);

// Checks `text` before it is parsed: valid UTF-8 and nested at most
// `max_depth` deep. Returns OK, or invalid_argument naming `what` ("request
// body") and, for depth, the limit and `limit_name` (the config key that sets
// it, or empty), e.g. "request body nests deeper than 64 levels
// (api.max_json_depth)".
Status check_json_text(std::string_view text, size_t max_depth, std::string_view what,
                       std::string_view limit_name = {});

}  // namespace aether
