// aether C++ SDK: a header-only layer over abi.h for plugin authors.
//
// A plugin author writes a state struct, command handlers that emit events or
// reject, and reducers that apply events; then exports the plugin with one
// macro:
//
//   struct Counter { int64_t value = 0; };
//   NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Counter, value)
//
//   static aether::ActorType<Counter> counter =
//       aether::ActorType<Counter>("Counter", /*state schema*/ 1)
//           .command("Add", [](const Counter&, const aether::json& cmd,
//                              aether::Decision& d) {
//             d.emit("Added", {{"by", aether::field<int64_t>(cmd, "by")}});
//           })
//           .event("Added", [](Counter& s, const aether::json& e) {
//             s.value += e.at("by").get<int64_t>();
//           });
//
//   AETHER_PLUGIN("counter", "1.0.0", counter)
//
// Commands and events may also be structs bound with nlohmann's type macros:
// .command<Add>("Add", [](const Counter&, const Add& c, Decision& d) {...})
// gets the payload read as Add, and d.emit("Added", Added{c.by}) emits one.
// Payloads and fields are read strictly (see values.hpp): a value the client
// did not send (2.5 read as 2) is refused with a message naming the field.
//
// Exceptions thrown by plugin code never cross the ABI: they are caught at the
// boundary and become a status plus a message (aether::BadInput and
// nlohmann::json errors -> AETHER_ERR_BAD_INPUT, aether::Rejected -> a domain
// rejection, anything else -> AETHER_ERR_FAILED).
//
// Snapshots and views default to the state's JSON form (nlohmann to_json /
// from_json found by ADL); override with .snapshot_with() and .view_with().
#ifndef AETHER_SDK_HPP
#define AETHER_SDK_HPP

#include <aether/abi.h>
#include <aether/values.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#if defined(_WIN32)
#define AETHER_EXPORT __declspec(dllexport)
#else
#define AETHER_EXPORT __attribute__((visibility("default")))
#endif

namespace aether {

// Thrown by a command handler to refuse the command for a domain reason.
// Equivalent to Decision::reject(code, message) followed by return.
class Rejected : public std::runtime_error {
 public:
  Rejected(std::string code, const std::string& message)
      : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const noexcept { return code_; }

 private:
  std::string code_;
};

// What a command handler uses to emit events or reject the command.
class Decision {
 public:
  explicit Decision(aether_type_call* call) : call_(call) {}

  // Emits an event (one of the actor type's declared event names). Throws
  // std::invalid_argument if the host refuses it (a name not in the model).
  void emit(std::string_view event, const json& payload = json::object()) {
    emit_raw(event, payload.dump());
  }

  // Emits an event from a struct bound with nlohmann's type macros (or any
  // value with a to_json).
  template <class Event>
  void emit(std::string_view event, const Event& payload) {
    emit_raw(event, json(payload).dump());
  }

  // Emits an event whose payload is already JSON text (skips a parse and a
  // dump). The host checks that the text is valid JSON.
  void emit_raw(std::string_view event, std::string_view json_text) {
    aether_status st = call_->host->aether_host_emit(
        call_, event.data(), event.size(),
        reinterpret_cast<const uint8_t*>(json_text.data()), json_text.size());
    if (st != AETHER_OK) {
      throw std::invalid_argument("event '" + std::string(event) +
                                  "' was refused by the host");
    }
  }

  // Refuses the command. No event of this call is stored.
  void reject(std::string_view code, std::string_view message) {
    rejected_ = true;
    call_->host->aether_host_reject(call_, code.data(), code.size(),
                                    message.data(), message.size());
  }

  bool rejected() const noexcept { return rejected_; }

 private:
  aether_type_call* call_;
  bool rejected_ = false;
};

namespace detail {

inline void fail(aether_type_call* call, std::string_view message) {
  call->host->aether_host_fail(call, message.data(), message.size());
}

inline aether_status write(aether_type_call* call, std::string_view bytes) {
  return call->host->aether_host_write(
      call, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

inline json parse(const uint8_t* bytes, size_t len) {
  return json::parse(bytes, bytes + len);
}

// Runs plugin code and turns every exception into a status plus message.
template <class F>
aether_status guarded(aether_type_call* call, F&& body) noexcept {
  try {
    return body();
  } catch (const Rejected& r) {
    call->host->aether_host_reject(call, r.code().data(), r.code().size(),
                                   r.what(), std::char_traits<char>::length(r.what()));
    return AETHER_REJECTED;
  } catch (const BadInput& e) {
    fail(call, e.what());
    return AETHER_ERR_BAD_INPUT;
  } catch (const json::exception& e) {
    fail(call, e.what());
    return AETHER_ERR_BAD_INPUT;
  } catch (const std::bad_alloc&) {
    fail(call, "out of memory");
    return AETHER_ERR_NO_MEMORY;
  } catch (const std::exception& e) {
    fail(call, e.what());
    return AETHER_ERR_FAILED;
  } catch (...) {
    fail(call, "unknown exception");
    return AETHER_ERR_FAILED;
  }
}

// The common base of every ActorType<State>, so AETHER_PLUGIN can list types
// whose states differ.
class ActorTypeBase {
 public:
  virtual ~ActorTypeBase() = default;
  virtual const aether_type_actor_def* def() = 0;
};

}  // namespace detail

// One actor type of a plugin: State is the in-memory state of one actor.
// REQUIRES: configured once (usually in a static initializer) before the host
// loads the plugin; never changed afterwards.
template <class State>
class ActorType : public detail::ActorTypeBase {
 public:
  using CommandHandler =
      std::function<void(const State&, const json& payload, Decision&)>;
  using Reducer = std::function<void(State&, const json& payload)>;
  using ToBytes = std::function<std::string(const State&)>;
  using FromBytes = std::function<void(State&, std::string_view bytes)>;
  using ToView = std::function<json(const State&)>;
  // Returns the state JSON in the current schema, or nullopt when
  // `from_schema` cannot be upgraded (the host replays events instead).
  using Upgrade =
      std::function<std::optional<json>(uint32_t from_schema, const json& old)>;

  ActorType(std::string name, uint32_t state_schema_version)
      : name_(std::move(name)), schema_(state_schema_version) {}

  ActorType(ActorType&&) = default;

  ActorType&& command(std::string name, CommandHandler handler) && {
    commands_.push_back(std::move(name));
    command_handlers_.push_back(std::move(handler));
    return std::move(*this);
  }

  // A typed command: the payload is read strictly as Command (a struct bound
  // with NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE, see values.hpp) before `handler`
  // gets it: void(const State&, const Command&, Decision&).
  template <class Command, class F>
  ActorType&& command(std::string name, F handler) && {
    return std::move(*this).command(
        std::move(name), [h = std::move(handler)](const State& s, const json& p, Decision& d) {
          h(s, decode<Command>(p), d);
        });
  }

  // A typed event: void(State&, const Event&).
  template <class Event, class F>
  ActorType&& event(std::string name, F reducer) && {
    return std::move(*this).event(std::move(name),
                                  [r = std::move(reducer)](State& s, const json& p) {
                                    r(s, decode<Event>(p));
                                  });
  }

  ActorType&& event(std::string name, Reducer reducer) && {
    events_.push_back(std::move(name));
    reducers_.push_back(std::move(reducer));
    return std::move(*this);
  }

  ActorType&& snapshot_with(ToBytes to, FromBytes from) && {
    to_bytes_ = std::move(to);
    from_bytes_ = std::move(from);
    return std::move(*this);
  }

  ActorType&& view_with(ToView view) && {
    view_ = std::move(view);
    return std::move(*this);
  }

  ActorType&& upgrade_with(Upgrade upgrade) && {
    upgrade_ = std::move(upgrade);
    return std::move(*this);
  }

  // Runs `payload` through the reducer of `event` directly, as the host's
  // apply would: for tests and benchmarks of the reducer itself.
  void apply_direct(State& state, size_t event_index, const json& payload) const {
    reducers_.at(event_index)(state, payload);
  }

  const aether_type_actor_def* def() override {
    if (def_.struct_size == 0) build_def();
    return &def_;
  }

 private:
  struct Holder {
    const ActorType* type;
    State state;
  };

  void build_def() {
    for (const auto& c : commands_) command_ptrs_.push_back(c.c_str());
    for (const auto& e : events_) event_ptrs_.push_back(e.c_str());
    def_.struct_size = sizeof(aether_type_actor_def);
    def_.name = name_.c_str();
    def_.state_schema_version = schema_;
    def_.command_names = command_ptrs_.data();
    def_.command_count = static_cast<uint32_t>(command_ptrs_.size());
    def_.event_names = event_ptrs_.data();
    def_.event_count = static_cast<uint32_t>(event_ptrs_.size());
    def_.on_create = &on_create;
    def_.on_destroy = &on_destroy;
    def_.on_decide = &on_decide;
    def_.on_apply = &on_apply;
    def_.on_snapshot = &on_snapshot;
    def_.on_restore = &on_restore;
    def_.on_view = &on_view;
    def_.on_upgrade_state = upgrade_ ? &on_upgrade_state : nullptr;
    def_.type_data = this;
  }

  static const ActorType& self(aether_type_call* call) {
    return *static_cast<const ActorType*>(call->type_data);
  }

  static aether_status on_create(aether_type_call* call, void** out_state) {
    return detail::guarded(call, [&] {
      *out_state = new Holder{&self(call), State{}};
      return AETHER_OK;
    });
  }

  static void on_destroy(void* state) { delete static_cast<Holder*>(state); }

  static aether_status on_decide(aether_type_call* call, const void* state,
                                 const aether_type_command* cmd) {
    return detail::guarded(call, [&] {
      const auto* h = static_cast<const Holder*>(state);
      if (cmd->index >= h->type->command_handlers_.size()) {
        detail::fail(call, "command index out of range");
        return AETHER_ERR_BAD_INPUT;
      }
      json payload = cmd->payload_len == 0
                         ? json::object()
                         : detail::parse(cmd->payload, cmd->payload_len);
      Decision d(call);
      h->type->command_handlers_[cmd->index](h->state, payload, d);
      return d.rejected() ? AETHER_REJECTED : AETHER_OK;
    });
  }

  static aether_status on_apply(aether_type_call* call, void* state,
                                const aether_type_event* ev) {
    return detail::guarded(call, [&] {
      auto* h = static_cast<Holder*>(state);
      if (ev->index >= h->type->reducers_.size()) {
        detail::fail(call, "event index out of range");
        return AETHER_ERR_BAD_INPUT;
      }
      h->type->reducers_[ev->index](
          h->state, ev->payload_len == 0
                        ? json::object()
                        : detail::parse(ev->payload, ev->payload_len));
      return AETHER_OK;
    });
  }

  static aether_status on_snapshot(aether_type_call* call, const void* state) {
    return detail::guarded(call, [&] {
      const auto* h = static_cast<const Holder*>(state);
      const std::string bytes = h->type->to_bytes_
                                    ? h->type->to_bytes_(h->state)
                                    : json(h->state).dump();
      return detail::write(call, bytes);
    });
  }

  static aether_status on_restore(aether_type_call* call, void* state,
                                  const uint8_t* bytes, size_t len) {
    return detail::guarded(call, [&] {
      auto* h = static_cast<Holder*>(state);
      if (h->type->from_bytes_) {
        h->type->from_bytes_(
            h->state,
            std::string_view(reinterpret_cast<const char*>(bytes), len));
      } else {
        h->state = detail::parse(bytes, len).template get<State>();
      }
      return AETHER_OK;
    });
  }

  static aether_status on_view(aether_type_call* call, const void* state) {
    return detail::guarded(call, [&] {
      const auto* h = static_cast<const Holder*>(state);
      const json view = h->type->view_ ? h->type->view_(h->state) : json(h->state);
      return detail::write(call, view.dump());
    });
  }

  static aether_status on_upgrade_state(aether_type_call* call,
                                        uint32_t from_schema,
                                        const uint8_t* bytes, size_t len) {
    return detail::guarded(call, [&] {
      std::optional<json> upgraded =
          self(call).upgrade_(from_schema, detail::parse(bytes, len));
      if (!upgraded) {
        detail::fail(call, "no upgrade from state schema " +
                               std::to_string(from_schema));
        return AETHER_ERR_UNSUPPORTED;
      }
      return detail::write(call, upgraded->dump());
    });
  }

  std::string name_;
  uint32_t schema_;
  std::vector<std::string> commands_;
  std::vector<CommandHandler> command_handlers_;
  std::vector<std::string> events_;
  std::vector<Reducer> reducers_;
  ToBytes to_bytes_;
  FromBytes from_bytes_;
  ToView view_;
  Upgrade upgrade_;

  std::vector<const char*> command_ptrs_;
  std::vector<const char*> event_ptrs_;
  aether_type_actor_def def_{};
};

namespace detail {

// Builds the plugin table once and hands it to the host.
template <class... Types>
aether_status export_plugin(const aether_type_plugin_def** out,
                            const char* name, const char* version,
                            Types&... types) noexcept {
  try {
    static std::vector<const aether_type_actor_def*> defs;
    static aether_type_plugin_def plugin{};
    if (plugin.struct_size == 0) {
      (defs.push_back(static_cast<ActorTypeBase&>(types).def()), ...);
      plugin.abi_major = AETHER_ABI_MAJOR;
      plugin.abi_minor = AETHER_ABI_MINOR;
      plugin.name = name;
      plugin.version = version;
      plugin.actor_types = defs.data();
      plugin.actor_type_count = static_cast<uint32_t>(defs.size());
      plugin.struct_size = sizeof(aether_type_plugin_def);
    }
    *out = &plugin;
    return AETHER_OK;
  } catch (...) {
    return AETHER_ERR_NO_MEMORY;
  }
}

}  // namespace detail
}  // namespace aether

// Exports the plugin: its name (same alphabet as actor type names), a version
// text, and the ActorType objects it serves.
#define AETHER_PLUGIN(NAME, VERSION, ...)                                   \
  extern "C" AETHER_EXPORT aether_status aether_plugin_entry(               \
      const aether_host_api* host, const aether_type_plugin_def** out_def) { \
    (void)host;                                                             \
    return ::aether::detail::export_plugin(out_def, NAME, VERSION,          \
                                           __VA_ARGS__);                    \
  }

#endif  // AETHER_SDK_HPP
