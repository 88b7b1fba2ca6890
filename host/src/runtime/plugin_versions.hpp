// Per-namespace plugin versions: which namespaces a hot swap moves, and
// registering the new version for them.
//
// A plugin has a main version and may have versions of its own for some
// namespaces (a canary, plugins.<entry>.namespaces). A swap moves one of
// three sets of namespaces (SwapOptions):
//
//   unscoped   those that follow the main version; `next` becomes it
//   scoped     exactly the listed ones; `next` becomes their own version
//              (or, when it is the main version, they follow it again)
//   promote    all of them; `next` becomes the main version and no
//              namespace keeps a version of its own
//
// Actors of the other namespaces are not paused and keep their states.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/status.hpp"
#include "runtime/runtime.hpp"

namespace aether {

class Plugin;
class PluginRegistry;

class SwapScope {
 public:
  // The scope of a swap of plugin `plugin` with `options`, as the registry
  // stands now. REQUIRES: no other swap of the plugin runs meanwhile.
  SwapScope(const PluginRegistry& registry, const std::string& plugin, const SwapOptions& options);

  // The version the swapped namespaces run now (for a scoped swap, the
  // first listed namespace's; for the others, the main version). nullptr when
  // the plugin is not loaded.
  const std::shared_ptr<const Plugin>& from() const { return from_; }
  // Whether the swap moves the actors of namespace `ns`.
  bool covers(const std::string& ns) const;
  // Registers `next` as the version of the swapped namespaces.
  Status commit(PluginRegistry& registry, const std::shared_ptr<const Plugin>& next) const;

 private:
  std::vector<std::string> namespaces_;
  bool promote_ = false;
  std::set<std::string> own_;  // namespaces running a version of their own
  std::shared_ptr<const Plugin> from_;
};

// The namespaces of `all` that follow the main version of `plugin`.
std::vector<std::string> main_namespaces(const PluginRegistry& registry, const std::string& plugin,
                                         const std::vector<std::string>& all);

}  // namespace aether
