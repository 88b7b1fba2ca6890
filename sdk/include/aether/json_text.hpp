// aether SDK: checks on JSON text made before any JSON tree is built, shared
// by the host (what clients send, what plugins emit) and the SDK's FakeHost.
// Nesting depth (a JSON library's recursive walks use one stack frame per
// level) and UTF-8 validity (a JSON library throws on strings that are not).
// Linear scans without recursion or allocation; the C++ standard library only.
#ifndef AETHER_JSON_TEXT_HPP
#define AETHER_JSON_TEXT_HPP

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace aether::rules {

// What a plugin may emit (event payloads, views) and what a host passes to a
// plugin: fixed, above any configurable request limit.
inline constexpr size_t kMaxPluginJsonDepth = 1024;

// Returns the nesting depth of `text`: the largest number of '{' and '[' open
// at once, outside strings (escapes honoured). Stops reading once the depth
// exceeds `limit` and then returns limit + 1. Does not check that `text` is
// valid JSON: a parser does that afterwards, on text known to be shallow.
inline size_t json_depth(std::string_view text, size_t limit) {
  size_t depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character, whatever it is
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > deepest) {
        deepest = depth;
        if (deepest > limit) return limit + 1;
      }
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

namespace detail {

// The length of the well-formed UTF-8 sequence at p[0..n), or 0.
inline size_t utf8_sequence(const unsigned char* p, size_t n) {
  const unsigned char c = p[0];
  size_t len;
  uint32_t cp;
  if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
  else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
  else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
  else return 0;
  if (n < len) return 0;
  for (size_t i = 1; i < len; ++i) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

}  // namespace detail

// Returns the offset of the first byte of `text` that is not part of a
// well-formed UTF-8 sequence (overlong forms, surrogates and code points above
// U+10FFFF are not), or std::string_view::npos when all of it is.
inline size_t invalid_utf8_at(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    const size_t len = detail::utf8_sequence(p + i, n - i);
    if (len == 0) return i;
    i += len;
  }
  return std::string_view::npos;
}

// What is wrong with `text` before it is parsed, or "" when it is valid UTF-8
// nested at most `max_depth` deep: "<what> is not valid UTF-8 (byte 3)",
// "<what> nests deeper than 64 levels (<limit_name>)".
inline std::string json_text_problem(std::string_view text, size_t max_depth, std::string_view what,
                                     std::string_view limit_name = {}) {
  if (const size_t at = invalid_utf8_at(text); at != std::string_view::npos) {
    return std::string(what) + " is not valid UTF-8 (byte " + std::to_string(at) + ")";
  }
  if (json_depth(text, max_depth) > max_depth) {
    std::string m = std::string(what) + " nests deeper than " + std::to_string(max_depth) + " levels";
    if (!limit_name.empty()) m += " (" + std::string(limit_name) + ")";
    return m;
  }
  return {};
}

// `s` quoted for a message: control, non-ASCII and quote bytes escaped as
// \xNN, cut after 40 bytes ("'Deposit'", "'a\x0ab...'").
inline std::string quote(std::string_view s) {
  std::string out = "'";
  size_t shown = 0;
  for (unsigned char c : s) {
    if (shown++ == 40) { out += "..."; break; }
    if (c < 0x20 || c >= 0x7F || c == '\'') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "'";
}

}  // namespace aether::rules

#endif  // AETHER_JSON_TEXT_HPP
