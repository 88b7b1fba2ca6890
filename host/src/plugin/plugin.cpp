#include "plugin/plugin.hpp"

#define BOOST_DLL_USE_STD_FS
#include <aether/host_rules.hpp>

#include <boost/dll/shared_library.hpp>

#include <cstddef>
#include <fstream>
#include <iterator>
#include <set>
#include <system_error>

#include "core/json_limits.hpp"
#include "core/elf_image.hpp"
#include "core/log.hpp"
#include "core/names.hpp"
#include "core/sha256.hpp"

namespace aether {

// ---------------------------------------------------------------------------
// Host callbacks
// ---------------------------------------------------------------------------

namespace {

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

const aether_host_api kHostApi = {
    sizeof(aether_host_api), AETHER_ABI_MAJOR, AETHER_ABI_MINOR, &host_emit,
    &host_reject,            &host_write,      &host_fail,       &host_log,
};

std::string describe(aether_status st, const CallState& cs) { return rules::describe(st, cs); }

}  // namespace

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

// ---------------------------------------------------------------------------
// Plugin
// ---------------------------------------------------------------------------

struct Plugin::Library {
  boost::dll::shared_library lib;
};

Plugin::~Plugin() {
  types_.clear();
  if (lib_) lib_->lib.unload();
}

const ActorType* Plugin::find_type(std::string_view name) const {
  for (const auto& t : types_) {
    if (t->name() == name) return t.get();
  }
  return nullptr;
}

std::string plugin_file_sha256(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return "";
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return in.bad() ? std::string() : sha256_hex(bytes);
}

namespace {

// The smallest tables a 1.0 plugin may hand over: every required member.
constexpr size_t kMinPluginDefSize =
    offsetof(aether_type_plugin_def, actor_type_count) + sizeof(uint32_t);
constexpr size_t kMinActorDefSize = offsetof(aether_type_actor_def, on_view) + sizeof(aether_on_view);

// Checks one name of the model; `what` says where it stands.
std::string check_model_name(const char* name, const std::string& what) {
  if (name == nullptr) return what + " is NULL";
  const std::string_view n(name);
  if (!is_valid_utf8(n)) return what + " " + quote_for_message(n) + " is not valid UTF-8";
  const std::string why = check_name(n);
  if (!why.empty()) {
    return what + " " + quote_for_message(n) + " " + why +
           "; names must be safe NATS subject tokens";
  }
  return {};
}

std::string check_name_list(const char* const* names, uint32_t count, const std::string& what) {
  if (count > 0 && names == nullptr) return what + " list is NULL";
  std::set<std::string_view> seen;
  for (uint32_t i = 0; i < count; ++i) {
    std::string e = check_model_name(names[i], what + " name #" + std::to_string(i + 1));
    if (!e.empty()) return e;
    if (!seen.insert(names[i]).second) return "duplicate " + what + " name '" + names[i] + "'";
  }
  return {};
}

std::string check_actor_def(const aether_type_actor_def* d, uint32_t i) {
  const std::string at = "actor type #" + std::to_string(i + 1);
  if (d == nullptr) return at + " is NULL";
  if (d->struct_size < kMinActorDefSize) {
    return at + " has struct_size " + std::to_string(d->struct_size) + ", smaller than the " +
           std::to_string(kMinActorDefSize) + " bytes every ABI 1.x table has";
  }
  std::string e = check_model_name(d->name, at + " name");
  if (!e.empty()) return e;
  const std::string t = std::string("actor type ") + d->name;
  if (d->command_count == 0) return t + " declares no commands";
  e = check_name_list(d->command_names, d->command_count, t + " command");
  if (e.empty()) e = check_name_list(d->event_names, d->event_count, t + " event");
  if (!e.empty()) return e;
  const std::pair<const void*, const char*> hooks[] = {
      {reinterpret_cast<const void*>(d->on_create), "on_create"},
      {reinterpret_cast<const void*>(d->on_destroy), "on_destroy"},
      {reinterpret_cast<const void*>(d->on_decide), "on_decide"},
      {reinterpret_cast<const void*>(d->on_apply), "on_apply"},
      {reinterpret_cast<const void*>(d->on_snapshot), "on_snapshot"},
      {reinterpret_cast<const void*>(d->on_restore), "on_restore"},
      {reinterpret_cast<const void*>(d->on_view), "on_view"},
  };
  for (const auto& [fn, hook] : hooks) {
    if (fn == nullptr) return t + " has no " + hook + " hook (required)";
  }
  return {};
}

}  // namespace

Result<std::shared_ptr<Plugin>> Plugin::open(const std::filesystem::path& file,
                                             const std::filesystem::path& shown_as,
                                             std::string loaded_by) {
  const std::string f = shown_as.empty() ? file.string() : shown_as.string();
  // dlopen maps segments from the file: one past the end of a truncated file
  // would be a SIGBUS on first touch, so an incomplete image never gets there.
  if (const std::string why = check_elf_file(file.string()); !why.empty()) {
    if (why == "no such file") return Status::not_found("plugin " + f + ": no such file");
    return Status::invalid("plugin " + f + ": " + why);
  }

  std::error_code ec;
  std::shared_ptr<Plugin> p(new Plugin());
  p->path_ = file;
  p->source_ = shown_as.empty() ? file : shown_as;
  p->loaded_by_ = std::move(loaded_by);
  p->sha256_ = plugin_file_sha256(file);
  p->lib_ = std::make_unique<Library>();
  boost::dll::shared_library& lib = p->lib_->lib;
  lib.load(file, ec, boost::dll::load_mode::rtld_local | boost::dll::load_mode::rtld_now);
  if (ec) {
    return Status::invalid("plugin " + f + ": not a loadable shared library: " + ec.message());
  }
  if (!lib.has(AETHER_ENTRY_SYMBOL)) {
    return Status::invalid("plugin " + f + ": entry symbol '" AETHER_ENTRY_SYMBOL
                           "' is missing; is it an aether plugin (AETHER_PLUGIN(...) "
                           "or an exported aether_plugin_entry)?");
  }
  auto entry = lib.get<std::remove_pointer_t<aether_type_entry_fn>>(AETHER_ENTRY_SYMBOL);
  const aether_type_plugin_def* def = nullptr;
  const aether_status st = entry(&kHostApi, &def);
  if (st != AETHER_OK) {
    return Status::plugin_error("plugin " + f + ": " AETHER_ENTRY_SYMBOL " returned " +
                                rules::status_name(st));
  }
  if (def == nullptr) {
    return Status::plugin_error("plugin " + f + ": " AETHER_ENTRY_SYMBOL
                                " returned no plugin table");
  }
  if (def->struct_size < kMinPluginDefSize) {
    return Status::plugin_error("plugin " + f + ": plugin table has struct_size " +
                                std::to_string(def->struct_size) + ", smaller than the " +
                                std::to_string(kMinPluginDefSize) +
                                " bytes every ABI 1.x table has");
  }
  if (def->abi_major != AETHER_ABI_MAJOR) {
    return Status::plugin_error(
        "plugin " + f + ": built for aether ABI " + std::to_string(def->abi_major) + "." +
        std::to_string(def->abi_minor) + ", but this host speaks ABI " +
        std::to_string(AETHER_ABI_MAJOR) + "." + std::to_string(AETHER_ABI_MINOR) +
        " (major versions must match; rebuild the plugin against this host's SDK)");
  }
  std::string e = check_model_name(def->name, "plugin name");
  if (e.empty() && def->version == nullptr) e = "plugin version is NULL";
  if (e.empty() && def->actor_type_count == 0) e = "declares no actor types";
  if (e.empty() && def->actor_types == nullptr) e = "actor type list is NULL";
  std::set<std::string_view> seen;
  for (uint32_t i = 0; e.empty() && i < def->actor_type_count; ++i) {
    e = check_actor_def(def->actor_types[i], i);
    if (e.empty() && !seen.insert(def->actor_types[i]->name).second) {
      e = std::string("duplicate actor type name '") + def->actor_types[i]->name + "'";
    }
  }
  if (!e.empty()) return Status::plugin_error("plugin " + f + ": malformed model: " + e);

  p->name_ = def->name;
  p->version_ = def->version;
  p->abi_major_ = def->abi_major;
  p->abi_minor_ = def->abi_minor;
  for (uint32_t i = 0; i < def->actor_type_count; ++i) {
    p->types_.push_back(std::make_unique<ActorType>(p.get(), def->actor_types[i]));
  }
  if (def->abi_minor > AETHER_ABI_MINOR) {
    log::info("plugin " + p->name_ + " was built for ABI 1." + std::to_string(def->abi_minor) +
              "; members newer than 1." + std::to_string(AETHER_ABI_MINOR) + " are ignored");
  }
  return p;
}

// ---------------------------------------------------------------------------
// PluginRegistry
// ---------------------------------------------------------------------------

Status PluginRegistry::check_types_free(const Plugin& plugin,
                                        std::string_view except_plugin) const {
  for (const auto& t : plugin.types()) {
    auto it = type_owner_.find(t->name());
    if (it != type_owner_.end() && it->second != except_plugin) {
      return Status::invalid("plugin " + plugin.source().string() + ": actor type " + t->name() +
                             " is already registered by plugin " + it->second);
    }
  }
  return Status::ok();
}

Result<std::shared_ptr<const Plugin>> PluginRegistry::load(const std::filesystem::path& file) {
  auto opened = Plugin::open(file);
  if (!opened) return opened.status();
  std::shared_ptr<const Plugin> plugin = std::move(opened).value();
  if (Status s = add(plugin); !s) return s;
  return plugin;
}

Status PluginRegistry::add(std::shared_ptr<const Plugin> plugin) {
  std::lock_guard lock(mu_);
  if (auto it = plugins_.find(plugin->name()); it != plugins_.end()) {
    return Status::invalid("plugin " + plugin->source().string() + ": a plugin named " +
                           plugin->name() + " is already loaded from " +
                           it->second->source().string());
  }
  if (Status s = check_types_free(*plugin, ""); !s) return s;
  for (const auto& t : plugin->types()) type_owner_[t->name()] = plugin->name();
  plugins_[plugin->name()] = std::move(plugin);
  return Status::ok();
}

Status PluginRegistry::check_replace(const Plugin& plugin) const {
  std::lock_guard lock(mu_);
  if (plugins_.find(plugin.name()) == plugins_.end()) {
    return Status::not_found("no plugin named " + plugin.name() + " is loaded");
  }
  return check_types_free(plugin, plugin.name());
}

std::vector<std::string> breaking_changes(const Plugin& current, const Plugin& next) {
  std::vector<std::string> out;
  for (const auto& t : current.types()) {
    const ActorType* n = next.find_type(t->name());
    if (n == nullptr) {
      out.push_back("actor type " + t->name() + " is missing");
      continue;
    }
    for (const auto& c : t->commands()) {
      if (n->command_index(c) < 0) out.push_back("actor type " + t->name() + ": command " + c + " is missing");
    }
    for (const auto& e : t->events()) {
      if (n->event_index(e) < 0) {
        out.push_back("actor type " + t->name() + ": event " + e +
                      " is missing (stored events of this type could not be replayed)");
      }
    }
  }
  return out;
}

Status PluginRegistry::unload(std::string_view plugin_name) {
  std::lock_guard lock(mu_);
  auto it = plugins_.find(plugin_name);
  if (it == plugins_.end()) {
    return Status::not_found("no plugin named " + std::string(plugin_name) + " is loaded");
  }
  const std::string name = it->first;
  plugins_.erase(it);
  ns_versions_.erase(name);
  own_types(name);
  return Status::ok();
}

void PluginRegistry::own_types(const std::string& name) {
  std::erase_if(type_owner_, [&](const auto& kv) { return kv.second == name; });
  if (auto it = plugins_.find(name); it != plugins_.end()) {
    for (const auto& t : it->second->types()) type_owner_[t->name()] = name;
  }
  if (auto v = ns_versions_.find(name); v != ns_versions_.end()) {
    for (const auto& [_, p] : v->second) {
      for (const auto& t : p->types()) type_owner_[t->name()] = name;
    }
  }
}

Status PluginRegistry::replace(std::shared_ptr<const Plugin> plugin) {
  std::lock_guard lock(mu_);
  if (Status s = check_types_free(*plugin, plugin->name()); !s) return s;
  const std::string name = plugin->name();
  plugins_[name] = std::move(plugin);
  own_types(name);
  return Status::ok();
}

Status PluginRegistry::set_namespace_version(const std::string& ns, std::shared_ptr<const Plugin> plugin) {
  std::lock_guard lock(mu_);
  const std::string name = plugin->name();
  auto main = plugins_.find(name);
  if (main == plugins_.end()) return Status::not_found("no plugin named " + name + " is loaded");
  if (Status s = check_types_free(*plugin, name); !s) return s;
  if (main->second == plugin) {
    if (auto v = ns_versions_.find(name); v != ns_versions_.end()) v->second.erase(ns);
  } else {
    ns_versions_[name][ns] = std::move(plugin);
  }
  own_types(name);
  return Status::ok();
}

void PluginRegistry::clear_namespace_versions(std::string_view name) {
  std::lock_guard lock(mu_);
  if (auto v = ns_versions_.find(name); v != ns_versions_.end()) ns_versions_.erase(v);
  own_types(std::string(name));
}

std::map<std::string, std::shared_ptr<const Plugin>> PluginRegistry::namespace_versions(
    std::string_view name) const {
  std::lock_guard lock(mu_);
  auto v = ns_versions_.find(name);
  if (v == ns_versions_.end()) return {};
  return {v->second.begin(), v->second.end()};
}

void PluginRegistry::set_refusal(const std::string& name, const std::string& ns, const std::string& why) {
  std::lock_guard lock(mu_);
  if (why.empty()) {
    refusals_.erase({name, ns});
  } else {
    refusals_[{name, ns}] = why;
  }
  refusal_count_.store(refusals_.size());
}

std::string PluginRegistry::refusal(std::string_view ns, std::string_view type) const {
  if (refusal_count_.load(std::memory_order_relaxed) == 0) return "";
  std::lock_guard lock(mu_);
  auto owner = type_owner_.find(type);
  if (owner == type_owner_.end()) return "";
  auto it = refusals_.find({owner->second, std::string(ns)});
  return it == refusals_.end() ? "" : it->second;
}

std::map<std::string, std::string> PluginRegistry::refusals(std::string_view name) const {
  std::lock_guard lock(mu_);
  std::map<std::string, std::string> out;
  for (const auto& [key, why] : refusals_) {
    if (key.first == name) out[key.second] = why;
  }
  return out;
}

std::shared_ptr<const Plugin> PluginRegistry::version_for(std::string_view name, std::string_view ns) const {
  std::lock_guard lock(mu_);
  if (auto v = ns_versions_.find(name); v != ns_versions_.end()) {
    if (auto n = v->second.find(ns); n != v->second.end()) return n->second;
  }
  auto it = plugins_.find(name);
  return it == plugins_.end() ? nullptr : it->second;
}

std::shared_ptr<const Plugin> PluginRegistry::plugin_for_type(std::string_view type_name,
                                                              std::string_view ns) const {
  std::string owner;
  {
    std::lock_guard lock(mu_);
    auto it = type_owner_.find(type_name);
    if (it == type_owner_.end()) return nullptr;
    owner = it->second;
  }
  return version_for(owner, ns);
}

std::shared_ptr<const Plugin> PluginRegistry::find_plugin(std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = plugins_.find(name);
  return it == plugins_.end() ? nullptr : it->second;
}

std::shared_ptr<const Plugin> PluginRegistry::plugin_for_type(std::string_view type_name) const {
  std::lock_guard lock(mu_);
  auto it = type_owner_.find(type_name);
  if (it == type_owner_.end()) return nullptr;
  return plugins_.find(it->second)->second;
}

std::vector<std::shared_ptr<const Plugin>> PluginRegistry::plugins() const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<const Plugin>> out;
  for (const auto& [_, p] : plugins_) out.push_back(p);
  return out;
}

}  // namespace aether
