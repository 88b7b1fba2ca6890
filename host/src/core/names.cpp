#include "core/names.hpp"

#include <cstdint>
#include <cstdio>

#include "core/json_limits.hpp"

namespace aether {

bool is_valid_utf8(std::string_view s) { return invalid_utf8_at(s) == std::string_view::npos; }

static bool safe_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '_' || c == '-';
}

static std::string check(std::string_view s, size_t max) {
  if (s.empty()) return "is empty";
  if (s.size() > max) {
    return "is " + std::to_string(s.size()) + " bytes long (at most " + std::to_string(max) +
           ")";
  }
  if (!is_valid_utf8(s)) return "is not valid UTF-8";
  for (size_t i = 0; i < s.size(); ++i) {
    if (!safe_char(s[i])) {
      return "contains " + quote_for_message(s.substr(i, 1)) + " at position " +
             std::to_string(i) +
             " (allowed: A-Z a-z 0-9 _ -)";
    }
  }
  return {};
}

std::string check_name(std::string_view name) { return check(name, kMaxNameLength); }
std::string check_id(std::string_view id) { return check(id, kMaxIdLength); }

std::string quote_for_message(std::string_view s) { return rules::quote(s); }

}  // namespace aether
