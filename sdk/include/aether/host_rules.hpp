// aether SDK: the host's rules for what a plugin hands back, in one place,
// used by aether-host (host/src/plugin) and by the SDK's FakeHost
// (aether/testing.hpp) so that a unit test sees what the host would do:
//   - an emitted event must be in the actor type's model, with a payload that
//     is valid UTF-8, nested at most kMaxPluginJsonDepth deep, and valid JSON;
//     otherwise the whole decide() is a plugin error and no event is kept;
//   - a decide() that called reject() is a rejection, whatever it returned;
//   - AETHER_ERR_BAD_INPUT from decide() is the client's error (400
//     invalid_argument with the plugin's message); any other error status is
//     a plugin error;
//   - a view must be valid JSON within the same limits;
//   - a command that is not in the model never reaches the plugin: it is
//     answered not_found ("unknown command 'X' for actor type T").
#ifndef AETHER_HOST_RULES_HPP
#define AETHER_HOST_RULES_HPP

#include <aether/abi.h>
#include <aether/json_text.hpp>

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace aether::rules {

// What one hook call told the host through its callbacks.
struct CallRecord {
  std::string fail_message;  // fail() and reject()'s message: the last one wins
  bool rejected = false;     // reject() was called
  std::string reject_code;
  std::string model_error;   // set when the plugin broke the model
};

inline constexpr const char* kEmitOutsideDecide = "emit() called outside decide()";
inline constexpr const char* kEmitNull = "emit() called with a NULL pointer";
inline constexpr const char* kRejectOutsideDecide = "reject() called outside decide()";
inline constexpr const char* kWriteOutsideOutput =
    "write() called outside snapshot(), view() or upgrade_state()";

// The problem with an event emitted by decide(), or "" when the host takes
// it. `index` is the event's position in the model of `type`, or -1.
inline std::string emitted_event_problem(std::string_view type, int index, std::string_view name,
                                         std::string_view payload) {
  if (index < 0) {
    return "emitted event " + quote(name) + ", which is not in the model of " + std::string(type);
  }
  if (std::string p = json_text_problem(payload, kMaxPluginJsonDepth, "payload"); !p.empty()) {
    return "emitted event " + std::string(name) + " whose " + p;
  }
  if (!nlohmann::json::accept(payload)) {
    return "emitted event " + std::string(name) + " with a payload that is not valid JSON";
  }
  return {};
}

// Checks one emit() call made in a decide() (`in_decide`) or elsewhere:
// returns the event's position in the model of `type` (`index_of(name)`,
// -1 when absent), or -1 with `r.model_error` set when the host refuses it.
template <class IndexOf>
int check_emit(CallRecord& r, bool in_decide, std::string_view type, const char* name,
               size_t name_len, const uint8_t* payload, size_t payload_len, IndexOf&& index_of) {
  if (!in_decide) {
    r.model_error = kEmitOutsideDecide;
    return -1;
  }
  if (name == nullptr || (payload == nullptr && payload_len != 0)) {
    r.model_error = kEmitNull;
    return -1;
  }
  const std::string_view n(name, name_len);
  const int index = index_of(n);
  r.model_error = emitted_event_problem(
      type, index, n, std::string_view(reinterpret_cast<const char*>(payload), payload_len));
  return r.model_error.empty() ? index : -1;
}

// The problem with the text a view() wrote, or "" when it is a JSON document.
inline std::string view_problem(std::string_view text) {
  if (std::string p = json_text_problem(text, kMaxPluginJsonDepth, "view"); !p.empty()) {
    return "wrote a " + p;
  }
  if (!nlohmann::json::accept(text)) return "wrote a view that is not valid JSON";
  return {};
}

inline const char* status_name(aether_status st) {
  switch (st) {
    case AETHER_OK: return "AETHER_OK";
    case AETHER_REJECTED: return "AETHER_REJECTED";
    case AETHER_ERR_BAD_INPUT: return "AETHER_ERR_BAD_INPUT";
    case AETHER_ERR_FAILED: return "AETHER_ERR_FAILED";
    case AETHER_ERR_UNSUPPORTED: return "AETHER_ERR_UNSUPPORTED";
    case AETHER_ERR_NO_MEMORY: return "AETHER_ERR_NO_MEMORY";
    case AETHER_ERR_INVALID_ARGUMENT: return "AETHER_ERR_INVALID_ARGUMENT";
    default: return "an unknown status";
  }
}

// Why a hook that returned `st` failed: the model error if the plugin broke
// the model, else the status name and the plugin's own words if it gave any.
inline std::string describe(aether_status st, const CallRecord& r) {
  if (!r.model_error.empty()) return r.model_error;
  std::string m = std::string("returned ") + status_name(st);
  if (!r.fail_message.empty()) m += ": " + r.fail_message;
  return m;
}

// What the host answers for a decide() call. The codes are the host's error
// codes (docs/api.md): "" (the events are stored), "rejected" (422, with the
// plugin's reject code), "invalid_argument" (400), "plugin_error" (500).
struct DecideVerdict {
  enum Kind { kOk, kRejected, kInvalid, kPluginError } kind = kOk;
  std::string message;      // for people; kPluginError: without the hook's location
  std::string reject_code;  // kRejected
  const char* error_code() const {
    constexpr const char* kCodes[] = {"", "rejected", "invalid_argument", "plugin_error"};
    return kCodes[kind];
  }
};

inline DecideVerdict judge_decide(aether_status st, const CallRecord& r) {
  if (!r.model_error.empty()) return {DecideVerdict::kPluginError, r.model_error, {}};
  if (st == AETHER_REJECTED || (st == AETHER_OK && r.rejected)) {
    return {DecideVerdict::kRejected,
            r.fail_message.empty() ? "the command was rejected" : r.fail_message,
            r.reject_code.empty() ? "rejected" : r.reject_code};
  }
  if (st == AETHER_ERR_BAD_INPUT) {
    return {DecideVerdict::kInvalid,
            r.fail_message.empty() ? "the plugin could not read the command" : r.fail_message, {}};
  }
  if (st != AETHER_OK) return {DecideVerdict::kPluginError, describe(st, r), {}};
  return {};
}

// The host's answer (not_found) to a command that is not in the model.
inline std::string unknown_command(std::string_view command, std::string_view type) {
  return "unknown command " + quote(command) + " for actor type " + std::string(type);
}

}  // namespace aether::rules

#endif  // AETHER_HOST_RULES_HPP
