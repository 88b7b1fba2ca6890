// PluginRegistry: the loaded plugins, who owns which actor type, the
// versions some namespaces run, and refusals; and breaking_changes().
#include "plugin/plugin.hpp"

namespace aether {

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
