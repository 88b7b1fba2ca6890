// The plugin versions of a cluster: which version serves which namespace is
// one record per plugin in the JetStream key-value bucket <prefix>_PLUGINS,
// key = the plugin's name:
//
//   {"plugin":"tally","by":"node-2",
//    "main":{"file":"/opt/p/tally.so","sha256":"…","version":"1.0.0"},
//    "namespaces":{"staging":{"file":"/opt/p/tally-v2.so","sha256":"…","version":"2.0.0"}}}
//
// The node that swaps a plugin (reload, promote, rollback, from its API or
// its file watcher) writes the record; every node watches the bucket and
// brings its own versions in step: it promotes, reloads or rolls back the
// namespaces whose version (by sha256) differs, loading the record's files
// (the same paths on every node). The check and the decision were made by
// the node that swapped, so differences found there were accepted there.
//
// A node that cannot run a namespace's version (the file is missing, its
// sha256 differs, the load fails) keeps its version, logs why, and shows it
// in problems() (GET /v1/plugins "cluster"); its commands in that
// namespace are refused (503) until it is in step again, so that no actor
// runs two versions at once across the cluster.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/status.hpp"

namespace aether {

class NatsConnection;
class PluginManager;
class PluginRegistry;
class Runtime;

struct PluginSyncOptions {
  std::string node_id = "node-1";
  std::string bucket_prefix = "AETHER_CLUSTER";
  int replicas = 1;
};

class PluginVersionSync {
 public:
  // Opens (creates) the bucket, applies the records already there, then
  // watches it and records this node's swaps (PluginManager's listener).
  // REQUIRES: every argument outlives the sync.
  static Result<std::unique_ptr<PluginVersionSync>> start(const PluginSyncOptions& options,
                                                          NatsConnection& connection, PluginManager& manager,
                                                          PluginRegistry& registry, Runtime& runtime);
  ~PluginVersionSync();  // stops
  PluginVersionSync(const PluginVersionSync&) = delete;
  PluginVersionSync& operator=(const PluginVersionSync&) = delete;

  void stop();

  struct Impl;

 private:
  explicit PluginVersionSync(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace aether
