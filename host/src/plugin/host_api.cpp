// The host callbacks a plugin calls during a hook (sdk/include/aether/abi.h).
#include "plugin/host_api.hpp"

#include "core/log.hpp"

namespace aether::plugin_detail {

// ---------------------------------------------------------------------------
// Host callbacks
// ---------------------------------------------------------------------------

namespace {

CallState& state_of(aether_type_call* call) {
  return *static_cast<CallState*>(call->host_data);
}

aether_status host_emit(aether_type_call* call, const char* name, size_t name_len,
                        const uint8_t* payload, size_t payload_len) {
  if (call == nullptr || call->host_data == nullptr) return AETHER_ERR_INVALID_ARGUMENT;
  CallState& cs = state_of(call);
  const int index =
      rules::check_emit(cs, cs.kind == CallKind::kDecide, cs.type->name(), name, name_len, payload,
                        payload_len, [&](std::string_view n) { return cs.type->event_index(n); });
  if (index < 0) return AETHER_ERR_INVALID_ARGUMENT;
  cs.decision->events.push_back(
      {static_cast<uint32_t>(index), std::string(reinterpret_cast<const char*>(payload), payload_len)});
  return AETHER_OK;
}

aether_status host_reject(aether_type_call* call, const char* code, size_t code_len,
                          const char* message, size_t message_len) {
  if (call == nullptr || call->host_data == nullptr) return AETHER_ERR_INVALID_ARGUMENT;
  CallState& cs = state_of(call);
  if (cs.kind != CallKind::kDecide) {
    cs.model_error = rules::kRejectOutsideDecide;
    return AETHER_ERR_INVALID_ARGUMENT;
  }
  cs.rejected = true;
  cs.reject_code = code != nullptr ? std::string(code, code_len) : "rejected";
  cs.fail_message = message != nullptr ? std::string(message, message_len) : "";
  return AETHER_OK;
}

aether_status host_write(aether_type_call* call, const uint8_t* bytes, size_t len) {
  if (call == nullptr || call->host_data == nullptr) return AETHER_ERR_INVALID_ARGUMENT;
  CallState& cs = state_of(call);
  if (cs.kind != CallKind::kOutput || (bytes == nullptr && len != 0)) {
    cs.model_error = rules::kWriteOutsideOutput;
    return AETHER_ERR_INVALID_ARGUMENT;
  }
  cs.output->append(reinterpret_cast<const char*>(bytes), len);
  return AETHER_OK;
}

aether_status host_fail(aether_type_call* call, const char* message, size_t len) {
  if (call == nullptr || call->host_data == nullptr) return AETHER_ERR_INVALID_ARGUMENT;
  if (message != nullptr) state_of(call).fail_message.assign(message, len);
  return AETHER_OK;
}

void host_log(aether_type_call* call, int32_t level, const char* message, size_t len) {
  if (message == nullptr) return;
  std::string line;
  if (call != nullptr && call->host_data != nullptr) {
    const ActorType* t = state_of(call).type;
    line = "plugin " + t->plugin().name() + " (" + t->name() + "): ";
  } else {
    line = "plugin: ";
  }
  line.append(message, len);
  switch (level) {
    case AETHER_LOG_DEBUG: log::debug(line); break;
    case AETHER_LOG_WARN: log::warn(line); break;
    case AETHER_LOG_ERROR: log::error(line); break;
    default: log::info(line); break;
  }
}

}  // namespace

const aether_host_api kHostApi = {
    sizeof(aether_host_api), AETHER_ABI_MAJOR, AETHER_ABI_MINOR, &host_emit,
    &host_reject,            &host_write,      &host_fail,       &host_log,
};

}  // namespace aether::plugin_detail
