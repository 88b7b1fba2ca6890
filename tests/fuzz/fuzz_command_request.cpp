// The command request body (api/command_api.hpp parse_command_request), as
// POST /v1/{ns}/actors/{type}/{id}/commands and the NATS ingress read it:
// any body gives a command or a 400 error that is itself valid JSON.
#include <cstdint>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "api/command_api.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  aether::Command c;
  aether::ApiReply error;
  bool ok = false;
  try {
    ok = aether::parse_command_request("bank", "BankAccount", "a-1", body, "hdr-key", c, error);
  } catch (...) {
    // Any exception is a defect: on a NATS thread it would end the host.
    std::abort();
  }
  if (ok) {
    if (!nlohmann::json::accept(c.payload)) std::abort();
  } else if (error.status != 400 || !nlohmann::json::accept(error.body)) {
    std::abort();
  }
  return 0;
}
