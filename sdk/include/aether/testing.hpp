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
// The fake host follows the real host's rules for what reaches the plugin and
// what comes back: the command must be in the model, emitted events must be in
// the model with JSON payloads, and a command's events are applied only when
// the whole decide succeeded. It is single-threaded and keeps events in
// memory. Header-only; depends on abi.h and the C++ standard library.
#ifndef AETHER_TESTING_HPP
#define AETHER_TESTING_HPP

#include <aether/abi.h>

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
  aether_status status = AETHER_OK;
  std::vector<RecordedEvent> events;  // decide: the events emitted (and applied)
  std::string code;                   // decide: the rejection code
  std::string message;                // rejection or failure message
  std::string output;                 // snapshot/view/upgrade bytes

  bool ok() const { return status == AETHER_OK; }
  bool rejected() const { return status == AETHER_REJECTED; }
};

namespace detail {

struct CallState {
  enum class Kind { kDecide, kOutput, kOther } kind = Kind::kOther;
  const aether_type_actor_def* def = nullptr;
  Outcome* outcome = nullptr;
};

inline CallState& state_of(aether_type_call* call) {
  return *static_cast<CallState*>(call->host_data);
}

inline aether_status emit(aether_type_call* call, const char* name,
                          size_t name_len, const uint8_t* payload,
                          size_t payload_len) {
  if (call == nullptr || name == nullptr) return AETHER_ERR_INVALID_ARGUMENT;
  CallState& cs = state_of(call);
  if (cs.kind != CallState::Kind::kDecide) return AETHER_ERR_INVALID_ARGUMENT;
  std::string_view n(name, name_len);
  for (uint32_t i = 0; i < cs.def->event_count; ++i) {
    if (n == cs.def->event_names[i]) {
      cs.outcome->events.push_back(
          {std::string(n),
           std::string(reinterpret_cast<const char*>(payload), payload_len), 0});
      return AETHER_OK;
    }
  }
  cs.outcome->message = "event '" + std::string(n) + "' is not in the model";
  return AETHER_ERR_INVALID_ARGUMENT;
}

inline aether_status reject(aether_type_call* call, const char* code,
                            size_t code_len, const char* msg, size_t msg_len) {
  CallState& cs = state_of(call);
  if (cs.kind != CallState::Kind::kDecide) return AETHER_ERR_INVALID_ARGUMENT;
  cs.outcome->code.assign(code, code_len);
  cs.outcome->message.assign(msg, msg_len);
  return AETHER_OK;
}

inline aether_status write(aether_type_call* call, const uint8_t* bytes,
                           size_t len) {
  CallState& cs = state_of(call);
  if (cs.kind != CallState::Kind::kOutput) return AETHER_ERR_INVALID_ARGUMENT;
  cs.outcome->output.append(reinterpret_cast<const char*>(bytes), len);
  return AETHER_OK;
}

inline aether_status fail(aether_type_call* call, const char* msg, size_t len) {
  state_of(call).outcome->message.assign(msg, len);
  return AETHER_OK;
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

  // Decides `command` with a JSON payload; on success applies the emitted
  // events in order and records them. Throws std::invalid_argument for a
  // command that is not in the model (the real host refuses those itself).
  Outcome send(std::string_view command, std::string_view payload = "{}") {
    uint32_t index = def_->command_count;
    for (uint32_t i = 0; i < def_->command_count; ++i) {
      if (command == def_->command_names[i]) index = i;
    }
    if (index == def_->command_count) {
      throw std::invalid_argument("command '" + std::string(command) +
                                  "' is not in the model of " + def_->name);
    }
    const std::string name(command);
    const std::string body(payload);
    Outcome out;
    detail::CallState cs{detail::CallState::Kind::kDecide, def_, &out};
    aether_type_call call{detail::host_api(), &cs, def_->type_data};
    aether_type_command cmd{index, name.c_str(),
                            reinterpret_cast<const uint8_t*>(body.data()),
                            body.size(), id_.c_str(), version()};
    out.status = def_->on_decide(&call, state_, &cmd);
    if (out.status != AETHER_OK) {
      out.events.clear();
      return out;
    }
    for (auto& e : out.events) {
      Outcome applied = apply(e.name, e.payload);
      if (!applied.ok()) {
        out.status = applied.status;
        out.message = "apply of '" + e.name + "' failed: " + applied.message;
        return out;
      }
      e.version = history_.back().version;
    }
    return out;
  }

  // Applies one event as the host does after storing it or during replay.
  Outcome apply(std::string_view event, std::string_view payload) {
    uint32_t index = def_->event_count;
    for (uint32_t i = 0; i < def_->event_count; ++i) {
      if (event == def_->event_names[i]) index = i;
    }
    if (index == def_->event_count) {
      throw std::invalid_argument("event '" + std::string(event) +
                                  "' is not in the model of " + def_->name);
    }
    const std::string name(event);
    const std::string body(payload);
    Outcome out;
    detail::CallState cs{detail::CallState::Kind::kOther, def_, &out};
    aether_type_call call{detail::host_api(), &cs, def_->type_data};
    aether_type_event ev{index, name.c_str(),
                         reinterpret_cast<const uint8_t*>(body.data()),
                         body.size(), version() + 1};
    out.status = def_->on_apply(&call, state_, &ev);
    if (out.ok()) history_.push_back({name, body, version() + 1});
    return out;
  }

  // The snapshot bytes of the current state (Outcome::output).
  Outcome snapshot() const { return output_call([&](aether_type_call* c) {
      return def_->on_snapshot(c, state_); }); }

  // The JSON view of the current state (Outcome::output).
  Outcome view() const { return output_call([&](aether_type_call* c) {
      return def_->on_view(c, state_); }); }

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
    out.status = hook(&call);
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
    aether_status st = def.on_restore(
        &call, actor.state_, reinterpret_cast<const uint8_t*>(bytes.data()),
        bytes.size());
    if (st != AETHER_OK) {
      throw std::runtime_error("restore failed (status " + std::to_string(st) +
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
    out.status = def.on_upgrade_state(
        &call, from_schema, reinterpret_cast<const uint8_t*>(bytes.data()),
        bytes.size());
    return out;
  }

 private:
  static void* create(const aether_type_actor_def& def) {
    Outcome out;
    detail::CallState cs{detail::CallState::Kind::kOther, &def, &out};
    aether_type_call call{detail::host_api(), &cs, def.type_data};
    void* state = nullptr;
    aether_status st = def.on_create(&call, &state);
    if (st != AETHER_OK) {
      throw std::runtime_error("create failed: " + out.message);
    }
    return state;
  }

  const aether_type_plugin_def* plugin_ = nullptr;
};

}  // namespace aether::testing

#endif  // AETHER_TESTING_HPP
