// Limits on JSON text from outside, checked before any JSON tree is built:
// nesting depth (a JSON library's recursive walks - dump, copy, compare - use
// one stack frame per level, so a document nested 70,000 deep overflows the
// stack) and UTF-8 validity (a JSON library throws on strings that are not).
// A linear scan without recursion or allocation; no JSON library in sight.
#pragma once

#include <aether/json_text.hpp>

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
// (The SDK's FakeHost applies the same limit: see aether/json_text.hpp.)
inline constexpr size_t kMaxPluginJsonDepth = rules::kMaxPluginJsonDepth;
// Stored records (commit messages, event rows, notifications) read back: a
// plugin's payload plus the few levels of the commit message around it.
inline constexpr size_t kMaxStoredJsonDepth = kMaxPluginJsonDepth + 8;

// json_depth(text, limit) and invalid_utf8_at(text): see aether/json_text.hpp.
using rules::invalid_utf8_at;
using rules::json_depth;

// Checks `text` before it is parsed: valid UTF-8 and nested at most
// `max_depth` deep. Returns OK, or invalid_argument naming `what` ("request
// body") and, for depth, the limit and `limit_name` (the config key that sets
// it, or empty), e.g. "request body nests deeper than 64 levels
// (api.max_json_depth)".
Status check_json_text(std::string_view text, size_t max_depth, std::string_view what,
                       std::string_view limit_name = {});

}  // namespace aether
