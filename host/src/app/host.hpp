// One wiring of a host: a HostConfig in, a running host out (NATS, store,
// bus, plugins, runtime, cluster, HTTP server, NATS ingress), and its orderly
// stop. aether-host's main() and tests build hosts through it alike.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "config/config.hpp"
#include "core/status.hpp"

namespace aether {

class ClusterNode;
class HttpServer;
class Metrics;
class PluginManager;
class PluginRegistry;
class Runtime;

// Called while the start waits for NATS (not reachable yet, or a JetStream
// leader still being elected): waits up to `pause_ms` and returns true to
// give up (main() returns true when SIGINT or SIGTERM arrived). Without
// one, the start sleeps.
using StartPause = std::function<bool(int64_t pause_ms)>;

class Host {
 public:
  // Locks the data directory, connects to NATS, opens the store, loads the
  // plugins, starts the runtime, then the cluster node, the HTTP server and
  // the NATS ingress, as the configuration asks. An error names the part.
  static Result<std::unique_ptr<Host>> start(const HostConfig& config, StartPause pause = {});
  ~Host();  // stop() if it was not called
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  // /readyz turns 503, a cluster node hands its shards off, the servers stop,
  // queued commands finish, the store is flushed and the outbox drained.
  // Idempotent; the first error is returned.
  Status stop();

  const HostConfig& config() const;
  Runtime& runtime();
  PluginRegistry& registry();
  PluginManager& plugins();
  Metrics& metrics();
  ClusterNode* cluster();  // null unless cluster.enabled
  HttpServer* http();      // null unless api.http.enabled

  struct Parts;

 private:
  explicit Host(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> p_;
};

}  // namespace aether
