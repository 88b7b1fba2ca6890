// ActorType: one actor type of a loaded plugin, and its hooks called with
// the host callbacks (host_api.hpp).
#include <cstddef>

#include "plugin/host_api.hpp"
#include "plugin/plugin.hpp"

namespace aether {

using plugin_detail::CallKind;
using plugin_detail::CallState;
using plugin_detail::describe;
using plugin_detail::kHostApi;

// ---------------------------------------------------------------------------
// ActorType
// ---------------------------------------------------------------------------

ActorType::ActorType(const Plugin* plugin, const aether_type_actor_def* def)
    : plugin_(plugin), def_(def), name_(def->name), schema_(def->state_schema_version) {
  for (uint32_t i = 0; i < def->command_count; ++i) {
    commands_.emplace_back(def->command_names[i]);
    command_index_.emplace(commands_.back(), i);
  }
  for (uint32_t i = 0; i < def->event_count; ++i) {
    events_.emplace_back(def->event_names[i]);
    event_index_.emplace(events_.back(), i);
  }
  // Members after on_view exist only if the plugin's table is large enough.
  if (def->struct_size >= offsetof(aether_type_actor_def, on_upgrade_state) +
                              sizeof(aether_on_upgrade_state)) {
    upgrade_ = def->on_upgrade_state;
  }
  if (def->struct_size >= offsetof(aether_type_actor_def, type_data) + sizeof(void*)) {
    type_data_ = def->type_data;
  }
}

// Short lists are scanned (faster than hashing a name); long ones hashed.
static int find_name(const std::vector<std::string>& names, const ActorType::NameIndex& index,
                     std::string_view name) {
  if (names.size() <= 8) {
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == name) return static_cast<int>(i);
    }
    return -1;
  }
  auto it = index.find(name);
  return it == index.end() ? -1 : static_cast<int>(it->second);
}

int ActorType::command_index(std::string_view name) const {
  return find_name(commands_, command_index_, name);
}

int ActorType::event_index(std::string_view name) const {
  return find_name(events_, event_index_, name);
}

std::string ActorType::where(const char* hook) const {
  return "plugin " + plugin_->name() + ", " + name_ + "." + hook + ": ";
}

Result<void*> ActorType::create() const {
  CallState cs{CallKind::kOther, this};
  aether_type_call call{&kHostApi, &cs, type_data_};
  void* state = nullptr;
  const aether_status st = def_->on_create(&call, &state);
  if (st != AETHER_OK || state == nullptr) {
    if (st == AETHER_OK) cs.model_error = "returned AETHER_OK but no state";
    return Status::plugin_error(where("create") + describe(st, cs));
  }
  return state;
}

void ActorType::destroy(void* state) const {
  if (state != nullptr) def_->on_destroy(state);
}

Decision ActorType::decide(const void* state, uint32_t command_index, std::string_view payload,
                           const std::string& actor_id, uint64_t version) const {
  Decision d;
  CallState cs{CallKind::kDecide, this, &d};
  aether_type_call call{&kHostApi, &cs, type_data_};
  const aether_type_command cmd{command_index,
                                commands_[command_index].c_str(),
                                reinterpret_cast<const uint8_t*>(payload.data()),
                                payload.size(),
                                actor_id.c_str(),
                                version};
  const aether_status st = def_->on_decide(&call, state, &cmd);
  const rules::DecideVerdict v = rules::judge_decide(st, cs);
  switch (v.kind) {
    case rules::DecideVerdict::kOk: return d;
    case rules::DecideVerdict::kRejected:
      d.reject_code = v.reject_code;
      d.status = Status(StatusCode::kRejected, v.message);
      break;
    case rules::DecideVerdict::kInvalid: d.status = Status::invalid(v.message); break;
    case rules::DecideVerdict::kPluginError:
      d.status = Status::plugin_error(where("decide") + v.message);
      break;
  }
  d.events.clear();
  return d;
}

Status ActorType::apply(void* state, uint32_t event_index, std::string_view payload,
                        uint64_t version) const {
  CallState cs{CallKind::kOther, this};
  aether_type_call call{&kHostApi, &cs, type_data_};
  const aether_type_event ev{event_index, events_[event_index].c_str(),
                             reinterpret_cast<const uint8_t*>(payload.data()), payload.size(),
                             version};
  const aether_status st = def_->on_apply(&call, state, &ev);
  if (st == AETHER_OK && cs.model_error.empty()) return Status::ok();
  return Status::plugin_error(where("apply") + "event " + events_[event_index] + " v" +
                              std::to_string(version) + ": " + describe(st, cs));
}

Result<std::string> ActorType::snapshot(const void* state) const {
  std::string out;
  CallState cs{CallKind::kOutput, this, nullptr, &out};
  aether_type_call call{&kHostApi, &cs, type_data_};
  const aether_status st = def_->on_snapshot(&call, state);
  if (st != AETHER_OK || !cs.model_error.empty()) {
    return Status::plugin_error(where("snapshot") + describe(st, cs));
  }
  return out;
}

Status ActorType::restore(void* state, std::string_view bytes) const {
  CallState cs{CallKind::kOther, this};
  aether_type_call call{&kHostApi, &cs, type_data_};
  const aether_status st = def_->on_restore(
      &call, state, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  if (st == AETHER_OK && cs.model_error.empty()) return Status::ok();
  return Status::plugin_error(where("restore") + describe(st, cs));
}

Result<std::string> ActorType::view(const void* state) const {
  std::string out;
  CallState cs{CallKind::kOutput, this, nullptr, &out};
  aether_type_call call{&kHostApi, &cs, type_data_};
  const aether_status st = def_->on_view(&call, state);
  if (st != AETHER_OK || !cs.model_error.empty()) {
    return Status::plugin_error(where("view") + describe(st, cs));
  }
  if (std::string problem = rules::view_problem(out); !problem.empty()) {
    return Status::plugin_error(where("view") + problem);
  }
  return out;
}

Result<std::string> ActorType::upgrade(uint32_t from_schema, std::string_view bytes) const {
  if (upgrade_ == nullptr) {
    return Status::not_found(where("upgrade_state") + "the actor type has no upgrade_state hook");
  }
  std::string out;
  CallState cs{CallKind::kOutput, this, nullptr, &out};
  aether_type_call call{&kHostApi, &cs, type_data_};
  const aether_status st = upgrade_(&call, from_schema,
                                    reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  if (st != AETHER_OK || !cs.model_error.empty()) {
    return Status::plugin_error(where("upgrade_state") + "from schema " +
                                std::to_string(from_schema) + ": " + describe(st, cs));
  }
  return out;
}

}  // namespace aether
