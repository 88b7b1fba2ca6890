#include "runtime/plugin_versions.hpp"

#include <algorithm>

#include "plugin/plugin.hpp"

namespace aether {

SwapScope::SwapScope(const PluginRegistry& registry, const std::string& plugin, const SwapOptions& options)
    : namespaces_(options.namespaces), promote_(options.promote) {
  for (const auto& [ns, _] : registry.namespace_versions(plugin)) own_.insert(ns);
  from_ = namespaces_.empty() || promote_ ? registry.find_plugin(plugin)
                                          : registry.version_for(plugin, namespaces_.front());
}

bool SwapScope::covers(const std::string& ns) const {
  if (promote_) return true;
  if (namespaces_.empty()) return own_.count(ns) == 0;
  return std::find(namespaces_.begin(), namespaces_.end(), ns) != namespaces_.end();
}

Status SwapScope::commit(PluginRegistry& registry, const std::shared_ptr<const Plugin>& next) const {
  if (namespaces_.empty() || promote_) {
    if (Status s = registry.replace(next); !s) return s;
    if (promote_) registry.clear_namespace_versions(next->name());
    return Status::ok();
  }
  for (const auto& ns : namespaces_) {
    if (Status s = registry.set_namespace_version(ns, next); !s) return s;
  }
  return Status::ok();
}

std::vector<std::string> main_namespaces(const PluginRegistry& registry, const std::string& plugin,
                                         const std::vector<std::string>& all) {
  const auto own = registry.namespace_versions(plugin);
  std::vector<std::string> out;
  for (const auto& ns : all) {
    if (own.count(ns) == 0) out.push_back(ns);
  }
  return out;
}

}  // namespace aether
