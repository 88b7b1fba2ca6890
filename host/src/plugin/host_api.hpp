// The host's side of a hook call, shared by the files of the plugin module
// (not part of its interface): what one call collects through the host
// callbacks, and the callback table every call and the entry point receive.
#pragma once

#include <aether/host_rules.hpp>

#include <string>

#include "plugin/plugin.hpp"

namespace aether::plugin_detail {

enum class CallKind { kDecide, kOutput, kOther };

// What one hook invocation collects through the host callbacks (the record
// is judged by the SDK's rules, shared with its FakeHost).
struct CallState : rules::CallRecord {
  CallState(CallKind k, const ActorType* t, Decision* d = nullptr, std::string* out = nullptr)
      : kind(k), type(t), decision(d), output(out) {}
  CallKind kind;
  const ActorType* type;
  Decision* decision;  // kDecide
  std::string* output;  // kOutput
};

// The callbacks (emit, reject, write, fail, log) a plugin calls back into.
extern const aether_host_api kHostApi;

inline std::string describe(aether_status st, const CallState& cs) { return rules::describe(st, cs); }

}  // namespace aether::plugin_detail
