// The plugin module: loads plugin images (Boost.DLL, RTLD_LOCAL|RTLD_NOW),
// checks the ABI handshake and the domain model, and calls the plugin's hooks
// on behalf of the runtime, turning their C results into host types.
#pragma once

#include <aether/abi.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.hpp"

namespace aether {

class Plugin;

// An event a plugin emitted in decide(), checked against the model: `index`
// is its position in ActorType::events().
struct EmittedEvent {
  uint32_t index = 0;
  std::string payload;  // JSON text, checked to be well-formed
};

// The outcome of a decide() call.
struct Decision {
  // kOk: `events` holds 0..n events. kRejected: the domain refused the
  // command; `reject_code` and `status.message()` say why. kInvalidArgument:
  // the plugin could not decode the command. kPluginError: the plugin failed
  // or broke the model (emitted an unknown event, malformed JSON).
  Status status;
  std::vector<EmittedEvent> events;
  std::string reject_code;
};

// One actor type of a loaded plugin. Owned by its Plugin; valid while a
// shared_ptr to that Plugin is held.
// Thread-safe: hooks may be called concurrently for different states.
class ActorType {
 public:
  // Name -> position, searchable by string_view.
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using NameIndex = std::unordered_map<std::string, uint32_t, NameHash, std::equal_to<>>;

  ActorType(const Plugin* plugin, const aether_type_actor_def* def);

  const std::string& name() const { return name_; }
  uint32_t schema_version() const { return schema_; }
  const Plugin& plugin() const { return *plugin_; }
  const std::vector<std::string>& commands() const { return commands_; }
  const std::vector<std::string>& events() const { return events_; }
  bool has_upgrade() const { return upgrade_ != nullptr; }

  // Position of a command / event name in the model, or -1.
  int command_index(std::string_view name) const;
  int event_index(std::string_view name) const;

  // Hooks. States are opaque handles owned by the plugin: every state from
  // create() must be released with destroy() of the same ActorType.
  Result<void*> create() const;
  void destroy(void* state) const;
  // REQUIRES: command_index < commands().size().
  Decision decide(const void* state, uint32_t command_index, std::string_view payload,
                  const std::string& actor_id, uint64_t version) const;
  // REQUIRES: event_index < events().size().
  Status apply(void* state, uint32_t event_index, std::string_view payload,
               uint64_t version) const;
  Result<std::string> snapshot(const void* state) const;
  Status restore(void* state, std::string_view bytes) const;
  Result<std::string> view(const void* state) const;
  // kNotFound when the type has no upgrade_state hook.
  Result<std::string> upgrade(uint32_t from_schema, std::string_view bytes) const;

 private:
  // "plugin bank, BankAccount.apply: " prefix for messages.
  std::string where(const char* hook) const;

  const Plugin* plugin_;
  const aether_type_actor_def* def_;
  std::string name_;
  uint32_t schema_;
  std::vector<std::string> commands_;
  std::vector<std::string> events_;
  NameIndex command_index_;
  NameIndex event_index_;
  aether_on_upgrade_state upgrade_ = nullptr;
  void* type_data_ = nullptr;
};

// A loaded plugin image. Unloaded (dlclose) when the last shared_ptr goes.
class Plugin {
 public:
  // Checks that `file` is a complete ELF image for this host (see
  // core/elf_image.hpp), loads it, runs the handshake and validates the
  // model. Every error names the file (or `shown_as`, when the file is a
  // private copy of it) and says what was wrong. `loaded_by` is a label for
  // reports ("start", "reload", "rollback").
  static Result<std::shared_ptr<Plugin>> open(const std::filesystem::path& file,
                                              const std::filesystem::path& shown_as = {},
                                              std::string loaded_by = {});

  ~Plugin();
  Plugin(const Plugin&) = delete;
  Plugin& operator=(const Plugin&) = delete;

  const std::string& name() const { return name_; }
  const std::string& version() const { return version_; }
  // The file that was loaded (a private copy for hot-swappable plugins) and
  // the file it was copied from.
  const std::filesystem::path& path() const { return path_; }
  const std::filesystem::path& source() const { return source_; }
  // How this version came to be loaded (the label given to open()).
  const std::string& loaded_by() const { return loaded_by_; }
  // SHA-256 of the loaded file, 64 hex digits: tells versions apart.
  const std::string& sha256() const { return sha256_; }
  uint32_t abi_major() const { return abi_major_; }
  uint32_t abi_minor() const { return abi_minor_; }
  const std::vector<std::unique_ptr<ActorType>>& types() const { return types_; }
  const ActorType* find_type(std::string_view name) const;

 private:
  struct Library;
  Plugin() = default;

  std::unique_ptr<Library> lib_;
  std::filesystem::path path_;
  std::filesystem::path source_;
  std::string loaded_by_;
  std::string sha256_;
  std::string name_;
  std::string version_;
  uint32_t abi_major_ = 0;
  uint32_t abi_minor_ = 0;
  std::vector<std::unique_ptr<ActorType>> types_;
};

// SHA-256 of a plugin file as 64 hex digits ("" when it cannot be read).
std::string plugin_file_sha256(const std::filesystem::path& file);

// What `next` drops of `current`'s model: actor types, commands or events
// that exist in `current` but not in `next`, one line each ("actor type
// Counter: command Reset is missing"). Empty when `next` keeps everything.
std::vector<std::string> breaking_changes(const Plugin& current, const Plugin& next);

// The plugins a host has loaded, and the actor types they serve. An actor
// type name belongs to at most one plugin. Thread-safe.
//
// A plugin has a main version, serving every namespace, and may have other
// versions each serving some namespaces (a canary): plugin_for_type(type, ns)
// answers the version that serves `ns`.
class PluginRegistry {
 public:
  // Loads and registers a plugin. Fails, loading nothing, if the plugin's
  // name is already loaded or one of its actor types is registered by
  // another plugin.
  Result<std::shared_ptr<const Plugin>> load(const std::filesystem::path& file);

  // Registers an opened plugin, with the same checks as load().
  Status add(std::shared_ptr<const Plugin> plugin);

  // Checks that replace(plugin) would succeed, changing nothing.
  Status check_replace(const Plugin& plugin) const;

  // Forgets a plugin; its image is unloaded once nothing else holds it.
  Status unload(std::string_view plugin_name);

  // Registers an already-opened plugin in place of the one with the same
  // name (hot swap). Fails if a type of `plugin` belongs to another plugin.
  Status replace(std::shared_ptr<const Plugin> plugin);

  std::shared_ptr<const Plugin> find_plugin(std::string_view name) const;

  // The plugin serving `type_name` (its main version), or nullptr.
  std::shared_ptr<const Plugin> plugin_for_type(std::string_view type_name) const;
  // The version of that plugin that serves namespace `ns`, or nullptr.
  std::shared_ptr<const Plugin> plugin_for_type(std::string_view type_name, std::string_view ns) const;
  // The version of plugin `name` that serves `ns` (its main version unless
  // `ns` has one of its own), or nullptr when no such plugin is loaded.
  std::shared_ptr<const Plugin> version_for(std::string_view name, std::string_view ns) const;

  // Makes `plugin` (a version of a loaded plugin, same name) the one serving
  // `ns`; the main version itself makes `ns` follow the main version again.
  // Fails like replace().
  Status set_namespace_version(const std::string& ns, std::shared_ptr<const Plugin> plugin);
  // Every namespace follows the main version again.
  void clear_namespace_versions(std::string_view name);
  // The namespaces of plugin `name` that run a version of their own.
  std::map<std::string, std::shared_ptr<const Plugin>> namespace_versions(std::string_view name) const;

  // Refuses commands of plugin `name` in namespace `ns` on this host, saying
  // `why` (a cluster node that cannot run the cluster's version there,
  // cluster/plugin_sync.hpp); an empty `why` lifts the refusal.
  void set_refusal(const std::string& name, const std::string& ns, const std::string& why);
  // Why commands of actor type `type` in `ns` are refused here, or "".
  // Cheap when nothing is refused.
  std::string refusal(std::string_view ns, std::string_view type) const;
  // Of plugin `name`: namespace -> why.
  std::map<std::string, std::string> refusals(std::string_view name) const;

  std::vector<std::shared_ptr<const Plugin>> plugins() const;

 private:
  Status check_types_free(const Plugin& plugin, std::string_view except_plugin) const;
  // Registers the types of every version of `name` as its own (REQUIRES: mu_).
  void own_types(const std::string& name);

  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const Plugin>, std::less<>> plugins_;
  std::map<std::string, std::string, std::less<>> type_owner_;  // type -> plugin
  // plugin -> namespace -> the version serving it, when not the main one
  std::map<std::string, std::map<std::string, std::shared_ptr<const Plugin>, std::less<>>, std::less<>>
      ns_versions_;
  std::map<std::pair<std::string, std::string>, std::string> refusals_;  // (plugin, ns) -> why
  std::atomic<size_t> refusal_count_{0};
};

}  // namespace aether
