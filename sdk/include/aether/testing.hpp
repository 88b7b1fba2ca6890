// aether plugin testing: a fake host to unit-test a plugin's decide, apply,
// snapshot, restore and view without the aether host.
//
//   #include <aether/testing.hpp>
//   extern "C" aether_status aether_plugin_entry(const aether_host_api*,
//                                                const aether_type_plugin_def**);
//
//   aether::testing::FakeHost host(aether_plugin_entry);
//   auto acct = host.actor("BankAccount", "acc-1");
//   auto r = acct.send("Open", R"({"owner":"ann"})");
//   assert(r.ok() && r.events[0].name == "Opened");
//   r = acct.send("Withdraw", R"({"amount":5})");
//   assert(r.rejected() && r.code == "insufficient_funds");
//
// The fake host applies the real host's rules (aether/host_rules.hpp, the
// same code aether-host runs): a command that is not in the model gets the
// host's not_found answer without reaching the plugin; emitted events must be
// in the model with valid JSON payloads (UTF-8, nesting, syntax), else the
// whole decide is a plugin error; a decide that called reject() is a
// rejection whatever it returned; and a command's events are applied only
// when the whole decide succeeded. Outcome::error holds the error code the
// host would answer. It is single-threaded and keeps events in memory.
// Header-only; depends on abi.h, nlohmann_json and the C++ standard library.
#ifndef AETHER_TESTING_HPP
#define AETHER_TESTING_HPP

#include <aether/abi.h>
#include <aether/host_rules.hpp>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aether::testing {

// An event as the fake host recorded it.
struct RecordedEvent {
  std::string name;
  std::string payload;  // JSON text as the plugin emitted it
  uint64_t version = 0;
};

// The outcome of one hook call.
struct Outcome {
  // decide: AETHER_OK, AETHER_REJECTED, AETHER_ERR_BAD_INPUT (the host's 400),
  // another error status for a plugin error (the hook's status, or
  // AETHER_ERR_INVALID_ARGUMENT when the plugin broke the model but returned
  // AETHER_OK), or AETHER_ERR_INVALID_ARGUMENT for a command that is not in
  // the model (the plugin is not called). Other hooks: the hook's status.
  aether_status status = AETHER_OK;
  // The error code the host would answer (docs/api.md): "" when it stores
  // the events, "rejected", "invalid_argument", "not_found", "plugin_error".
  std::string error;
  std::vector<RecordedEvent> events;  // decide: the events emitted (and applied)
  std::string code;                   // decide: the rejection code
  std::string message;                // rejection or failure message
  std::string output;                 // snapshot/view/upgrade bytes

  bool ok() const { return status == AETHER_OK; }
  bool rejected() const { return status == AETHER_REJECTED; }
};

namespace detail {

struct CallState : rules::CallRecord {
  enum class Kind { kDecide, kOutput, kOther };
  CallState(Kind k, const aether_type_actor_def* d, Outcome* o) : kind(k), def(d), outcome(o) {}
  Kind kind;
  const aether_type_actor_def* def;
  Outcome* outcome;
};

inline CallState& state_of(aether_type_call* call) {
  return *static_cast<CallState*>(call->host_data);
}

// Position of `name` in `names`, or -1.
inline int index_of(const char* const* names, uint32_t count, std::string_view name) {
  for (uint32_t i = 0; i < count; ++i) {
    if (name == names[i]) return static_cast<int>(i);
  }
  return -1;
}

inline aether_status emit(aether_type_call* call, const char* name,
                          size_t name_len, const uint8_t* payload,
                          size_t payload_len) {
  if (call == nullptr || call->host_data == nullptr) return AETHER_ERR_INVALID_ARGUMENT;
  CallState& cs = state_of(call);
  const int index = rules::check_emit(
      cs, cs.kind == CallState::Kind::kDecide, cs.def->name, name, name_len, payload,
      payload_len, [&](std::string_view n) {
        return index_of(cs.def->event_names, cs.def->event_count, n);
      });
  if (index < 0) return AETHER_ERR_INVALID_ARGUMENT;
  cs.outcome->events.push_back(
      {cs.def->event_names[index],
       std::string(reinterpret_cast<const char*>(payload), payload_len), 0});
  return AETHER_OK;
}

inline aether_status reject(aether_type_call* call, const char* code,
                            size_t code_len, const char* msg, size_t msg_len) {
  if (call == nullptr || call->host_data == nullptr) return AETHER_ERR_INVALID_ARGUMENT;
  CallState& cs = state_of(call);
  if (cs.kind != CallState::Kind::kDecide) {
    cs.model_error = rules::kRejectOutsideDecide;
    return AETHER_ERR_INVALID_ARGUMENT;
  }
  cs.rejected = true;
  cs.reject_code = code != nullptr ? std::string(code, code_len) : "rejected";
  cs.fail_message = msg != nullptr ? std::string(msg, msg_len) : "";
  return AETHER_OK;
}

inline aether_status write(aether_type_call* call, const uint8_t* bytes,
                           size_t len) {
  if (call == nullptr || call->host_data == nullptr) return AETHER_ERR_INVALID_ARGUMENT;
  CallState& cs = state_of(call);
  if (cs.kind != CallState::Kind::kOutput || (bytes == nullptr && len != 0)) {
    cs.model_error = rules::kWriteOutsideOutput;
    return AETHER_ERR_INVALID_ARGUMENT;
  }
  cs.outcome->output.append(reinterpret_cast<const char*>(bytes), len);
  return AETHER_OK;
}

inline aether_status fail(aether_type_call* call, const char* msg, size_t len) {
  if (call == nullptr || call->host_data == nullptr) return AETHER_ERR_INVALID_ARGUMENT;
  if (msg != nullptr) state_of(call).fail_message.assign(msg, len);
  return AETHER_OK;
}

// Fills `out` for a hook other than decide that returned `st`, as the host
// judges it: an error status or a broken model is a plugin error.
inline void judge_hook(aether_status st, const CallState& cs, Outcome& out) {
  out.status = st;
  if (st == AETHER_OK && cs.model_error.empty()) return;
  if (st == AETHER_OK) out.status = AETHER_ERR_INVALID_ARGUMENT;
  out.error = "plugin_error";
  out.message = cs.model_error.empty() ? cs.fail_message : rules::describe(st, cs);
}

// Fills `out` for a decide that returned `st` (rules::judge_decide).
inline void judge_decide(aether_status st, const CallState& cs, Outcome& out) {
  const rules::DecideVerdict v = rules::judge_decide(st, cs);
  out.error = v.error_code();
  out.message = v.message;
  out.code = v.reject_code;
  switch (v.kind) {
    case rules::DecideVerdict::kOk: out.status = AETHER_OK; return;
    case rules::DecideVerdict::kRejected: out.status = AETHER_REJECTED; break;
    case rules::DecideVerdict::kInvalid: out.status = AETHER_ERR_BAD_INPUT; break;
    case rules::DecideVerdict::kPluginError:
      out.status = st == AETHER_OK || st == AETHER_REJECTED ? AETHER_ERR_INVALID_ARGUMENT : st;
      break;
  }
  out.events.clear();
}

inline void log(aether_type_call*, int32_t, const char*, size_t) {}

inline const aether_host_api* host_api() {
  static const aether_host_api api = {sizeof(aether_host_api),
                                      AETHER_ABI_MAJOR,
                                      AETHER_ABI_MINOR,
                                      &emit,
                                      &reject,
                                      &write,
                                      &fail,
                                      &log};
  return &api;
}

}  // namespace detail

class FakeHost;

// One actor living in a FakeHost: its state handle and its event history.
class FakeActor {
 public:
  FakeActor(const FakeActor&) = delete;
  FakeActor& operator=(const FakeActor&) = delete;
  FakeActor(FakeActor&& o) noexcept
      : def_(o.def_), id_(std::move(o.id_)), state_(std::exchange(o.state_, nullptr)),
        history_(std::move(o.history_)) {}
  ~FakeActor() {
    if (state_ != nullptr) def_->on_destroy(state_);
  }

  // Decides `command` with a JSON payload as the host would (see the top of
  // this file); on success applies the emitted events in order and records
  // them. A command that is not in the model is answered as the host answers
  // it (error "not_found"), without calling the plugin.
  Outcome send(std::string_view command, std::string_view payload = "{}") {
    Outcome out;
    const int index = detail::index_of(def_->command_names, def_->command_count, command);
    if (index < 0) {
      out.status = AETHER_ERR_INVALID_ARGUMENT;
      out.error = "not_found";
      out.message = rules::unknown_command(command, def_->name);
      return out;
    }
    const std::string name(command);
    const std::string body(payload);
    detail::CallState cs{detail::CallState::Kind::kDecide, def_, &out};
    aether_type_call call{detail::host_api(), &cs, def_->type_data};
    aether_type_command cmd{static_cast<uint32_t>(index), name.c_str(),
                            reinterpret_cast<const uint8_t*>(body.data()),
                            body.size(), id_.c_str(), version()};
    detail::judge_decide(def_->on_decide(&call, state_, &cmd), cs, out);
    if (!out.ok()) return out;
    for (auto& e : out.events) {
      Outcome applied = apply(e.name, e.payload);
      if (!applied.ok()) {
        out.status = applied.status;
        out.error = applied.error;
        out.message = "apply of '" + e.name + "' failed: " + applied.message;
        return out;
      }
      e.version = history_.back().version;
    }
    return out;
  }

  // Applies one event as the host does after storing it or during replay.
  // Throws std::invalid_argument for an event that is not in the model.
  Outcome apply(std::string_view event, std::string_view payload) {
    const int index = detail::index_of(def_->event_names, def_->event_count, event);
    if (index < 0) {
      throw std::invalid_argument("event '" + std::string(event) +
                                  "' is not in the model of " + def_->name);
    }
    const std::string name(event);
    const std::string body(payload);
    Outcome out;
    detail::CallState cs{detail::CallState::Kind::kOther, def_, &out};
    aether_type_call call{detail::host_api(), &cs, def_->type_data};
    aether_type_event ev{static_cast<uint32_t>(index), name.c_str(),
                         reinterpret_cast<const uint8_t*>(body.data()),
                         body.size(), version() + 1};
    detail::judge_hook(def_->on_apply(&call, state_, &ev), cs, out);
    if (out.ok()) history_.push_back({name, body, version() + 1});
    return out;
  }

  // The snapshot bytes of the current state (Outcome::output).
  Outcome snapshot() const { return output_call([&](aether_type_call* c) {
      return def_->on_snapshot(c, state_); }); }

  // The JSON view of the current state (Outcome::output). A view that is not
  // a JSON document within the host's limits is a plugin error.
  Outcome view() const {
    Outcome out = output_call([&](aether_type_call* c) { return def_->on_view(c, state_); });
    if (out.ok()) {
      if (std::string problem = rules::view_problem(out.output); !problem.empty()) {
        out.status = AETHER_ERR_INVALID_ARGUMENT;
        out.error = "plugin_error";
        out.message = std::move(problem);
      }
    }
    return out;
  }

  uint64_t version() const { return history_.empty() ? 0 : history_.back().version; }
  const std::vector<RecordedEvent>& history() const { return history_; }
  const std::string& id() const { return id_; }

 private:
  friend class FakeHost;
  FakeActor(const aether_type_actor_def* def, std::string id, void* state)
      : def_(def), id_(std::move(id)), state_(state) {}

  template <class F>
  Outcome output_call(F&& hook) const {
    Outcome out;
    detail::CallState cs{detail::CallState::Kind::kOutput, def_, &out};
    aether_type_call call{detail::host_api(), &cs, def_->type_data};
    detail::judge_hook(hook(&call), cs, out);
    return out;
  }

  const aether_type_actor_def* def_;
  std::string id_;
  void* state_;
  std::vector<RecordedEvent> history_;
};

// Holds one plugin, through its entry function, as a host would.
class FakeHost {
 public:
  explicit FakeHost(aether_type_entry_fn entry) {
    aether_status st = entry(detail::host_api(), &plugin_);
    if (st != AETHER_OK || plugin_ == nullptr) {
      throw std::runtime_error("plugin entry failed with status " +
                               std::to_string(st));
    }
  }

  const aether_type_plugin_def& plugin() const { return *plugin_; }

  // The model of `actor_type`; throws std::invalid_argument if unknown.
  const aether_type_actor_def& type(std::string_view actor_type) const {
    for (uint32_t i = 0; i < plugin_->actor_type_count; ++i) {
      if (actor_type == plugin_->actor_types[i]->name) {
        return *plugin_->actor_types[i];
      }
    }
    throw std::invalid_argument("actor type '" + std::string(actor_type) +
                                "' is not in plugin " + plugin_->name);
  }

  // A new, empty actor of `actor_type` (version 0).
  FakeActor actor(std::string_view actor_type, std::string id) const {
    const aether_type_actor_def& def = type(actor_type);
    return FakeActor(&def, std::move(id), create(def));
  }

  // A new actor of `actor_type` whose state is restored from snapshot bytes.
  // Throws std::runtime_error with the plugin's message if restore fails.
  FakeActor restore(std::string_view actor_type, std::string id,
                    std::string_view bytes) const {
    const aether_type_actor_def& def = type(actor_type);
    FakeActor actor(&def, std::move(id), create(def));
    Outcome out;
    detail::CallState cs{detail::CallState::Kind::kOther, &def, &out};
    aether_type_call call{detail::host_api(), &cs, def.type_data};
    detail::judge_hook(def.on_restore(&call, actor.state_,
                                      reinterpret_cast<const uint8_t*>(bytes.data()),
                                      bytes.size()),
                       cs, out);
    if (!out.ok()) {
      throw std::runtime_error("restore failed (status " + std::to_string(out.status) +
                               "): " + out.message);
    }
    return actor;
  }

  // Runs the type's upgrade_state hook; Outcome::output holds the new bytes.
  Outcome upgrade(std::string_view actor_type, uint32_t from_schema,
                  std::string_view bytes) const {
    const aether_type_actor_def& def = type(actor_type);
    Outcome out;
    if (def.on_upgrade_state == nullptr) {
      out.status = AETHER_ERR_UNSUPPORTED;
      out.message = "the actor type has no upgrade_state hook";
      return out;
    }
    detail::CallState cs{detail::CallState::Kind::kOutput, &def, &out};
    aether_type_call call{detail::host_api(), &cs, def.type_data};
    detail::judge_hook(def.on_upgrade_state(&call, from_schema,
                                            reinterpret_cast<const uint8_t*>(bytes.data()),
                                            bytes.size()),
                       cs, out);
    return out;
  }

 private:
  static void* create(const aether_type_actor_def& def) {
    Outcome out;
    detail::CallState cs{detail::CallState::Kind::kOther, &def, &out};
    aether_type_call call{detail::host_api(), &cs, def.type_data};
    void* state = nullptr;
    detail::judge_hook(def.on_create(&call, &state), cs, out);
    if (!out.ok() || state == nullptr) {
      throw std::runtime_error("create failed: " + out.message);
    }
    return state;
  }

  const aether_type_plugin_def* plugin_ = nullptr;
};

}  // namespace aether::testing

#endif  // AETHER_TESTING_HPP
