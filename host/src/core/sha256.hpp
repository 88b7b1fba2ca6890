// SHA-256 (FIPS 180-4) of a byte string: for digests the host records, such
// as a command's digest next to its idempotency key.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace aether {

std::array<uint8_t, 32> sha256(std::string_view bytes);

// The digest as 64 lower-case hex digits.
std::string sha256_hex(std::string_view bytes);

}  // namespace aether
