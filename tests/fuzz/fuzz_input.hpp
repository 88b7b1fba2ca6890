// Reads a fuzzer's input as a sequence of small fields; past the end every
// field reads as zero or empty.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace aether::fuzz {

struct Input {
  const uint8_t* p;
  size_t n;

  uint8_t byte() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
  // The next `len` bytes (fewer at the end).
  std::string_view bytes(size_t len) {
    len = std::min(len, n);
    const std::string_view s(reinterpret_cast<const char*>(p), len);
    p += len;
    n -= len;
    return s;
  }
};

}  // namespace aether::fuzz
