// Plugin: opening a plugin's shared library, checking the model it declares
// and making its actor types.
#include "plugin/plugin.hpp"

#define BOOST_DLL_USE_STD_FS
#include <boost/dll/shared_library.hpp>

#include <cstddef>
#include <fstream>
#include <iterator>
#include <set>
#include <system_error>

#include "core/elf_image.hpp"
#include "core/json_limits.hpp"
#include "core/log.hpp"
#include "core/names.hpp"
#include "core/sha256.hpp"
#include "plugin/host_api.hpp"

namespace aether {

using plugin_detail::kHostApi;

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

// Checks the plugin table's model: its name, version and actor types.
std::string check_plugin_def(const aether_type_plugin_def* def) {
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
  return e;
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
  if (const std::string e = check_plugin_def(def); !e.empty()) {
    return Status::plugin_error("plugin " + f + ": malformed model: " + e);
  }

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

}  // namespace aether
