// Names and ids (core/names.hpp): the checks every name and id passes before
// it reaches a file name, SQL or a NATS subject. Checked against a plain
// reference reading of the rules in names.hpp.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/names.hpp"

namespace {

// UTF-8 by the book (RFC 3629): the shortest form, no surrogates, <= U+10FFFF.
bool reference_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    uint32_t cp = 0, min = 0;
    if (c < 0x80) { ++i; continue; }
    if (c >= 0xC2 && c <= 0xDF) { n = 1; cp = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 2; cp = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 3; cp = c & 0x07; min = 0x10000; }
    else return false;
    if (s.size() - i <= n) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

bool reference_name(std::string_view s, size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

void check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view s(reinterpret_cast<const char*>(data), size);
  check(aether::is_valid_utf8(s) == reference_utf8(s));
  check(aether::check_name(s).empty() == reference_name(s, aether::kMaxNameLength));
  check(aether::check_id(s).empty() == reference_name(s, aether::kMaxIdLength));
  // A quoted name is printable ASCII and short, whatever it quotes.
  const std::string q = aether::quote_for_message(s);
  check(q.size() <= 2 + 40 * 4 + 3);
  for (char c : q) check(c >= 0x20 && c < 0x7F);
  return 0;
}
