// A command message on the NATS ingress (api/nats_ingress.hpp
// parse_ingress_message): subject, Idempotency-Key header and body, read the
// way the ingress reads them. Input: subject \0 header \0 body.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "api/command_api.hpp"
#include "api/nats_ingress.hpp"

namespace {

std::string_view next_part(std::string_view& in) {
  const size_t nul = in.find('\0');
  const std::string_view part = in.substr(0, nul);
  in = nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);
  return part;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::string subject(next_part(in));
  const std::string header(next_part(in));
  const std::string body(in);
  aether::Command c;
  aether::ApiReply error;
  bool ok = false;
  try {
    ok = aether::parse_ingress_message(subject, body, header, c, error);
  } catch (...) {
    // Any exception is a defect: on a NATS thread it would end the host.
    std::abort();
  }
  if (ok) {
    // The actor key comes from single subject tokens (checked later against
    // the safe alphabet by the runtime).
    for (const std::string* part : {&c.ns, &c.type, &c.id}) {
      if (part->find('.') != std::string::npos) std::abort();
    }
    if (!nlohmann::json::accept(c.payload)) std::abort();
  } else if (error.status != 400 || !nlohmann::json::accept(error.body)) {
    std::abort();
  }
  return 0;
}
