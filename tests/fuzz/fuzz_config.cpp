// The YAML configuration (config/config.hpp parse_config): any text gives a
// configuration or an error naming what is wrong, never a crash.
#include <cstdint>
#include <string>

#include "config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto parsed = aether::parse_config(text, "fuzz.yaml");
  if (!parsed && parsed.status().message().empty()) __builtin_trap();
  if (parsed) (void)aether::parse_listen_address(parsed->api.http_listen);
  (void)aether::substitute_env(text);
  return 0;
}
