#include "core/status.hpp"

namespace aether {

const char* status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidArgument: return "invalid_argument";
    case StatusCode::kNotFound: return "not_found";
    case StatusCode::kConflict: return "conflict";
    case StatusCode::kRejected: return "rejected";
    case StatusCode::kPayloadTooLarge: return "payload_too_large";
    case StatusCode::kUnauthorized: return "unauthorized";
    case StatusCode::kUnavailable: return "unavailable";
    case StatusCode::kCorruption: return "corruption";
    case StatusCode::kPluginError: return "plugin_error";
    case StatusCode::kPluginTimeout: return "plugin_timeout";
    case StatusCode::kInternal: return "internal";
  }
  return "unknown";
}

std::string Status::to_string() const {
  if (is_ok()) return "ok";
  return std::string(status_code_name(code_)) + ": " + message_;
}

}  // namespace aether
