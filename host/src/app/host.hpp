// One wiring of a host: a HostConfig in, a running host out (NATS, store,
// bus, plugins, runtime, cluster, HTTP server, NATS ingress), and its orderly
// stop. aether-host's main(), the tests and the benchmarks build hosts
// through it alike.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "config/config.hpp"
#include "core/status.hpp"

namespace aether {

class Bus;
class ClusterNode;
class HttpServer;
class Metrics;
class PluginManager;
class PluginRegistry;
class Runtime;
class Journal;
struct RuntimeOptions;

// Called while the start waits for NATS (not reachable yet, or a JetStream
// leader still being elected): waits up to `pause_ms` and returns true to
// give up (main() returns true when SIGINT or SIGTERM arrived). Without
// one, the start sleeps.
using StartPause = std::function<bool(int64_t pause_ms)>;

// What a host takes from whoever starts it instead of making it from its
// configuration. aether-host gives only `pause`; the testkit and the test
// harnesses (and the benchmarks) give a store of their own, or runtime settings a HostConfig
// does not carry (a clock, say). Everything else is wired from the config.
struct HostSeams {
  StartPause pause;
  // Opens the store instead of config.store (the host owns what it returns).
  // restart_runtime() calls it again unless config.store.backend is "memory".
  std::function<Result<std::unique_ptr<Journal>>()> open_store;
  // A store used as is and not owned (a second host over another's store);
  // it must outlive the host. Wins over `open_store`.
  Journal* store = nullptr;
  // Adjusts the runtime options made from the config (they may be replaced).
  std::function<void(RuntimeOptions&)> tune_runtime;
};

class Host {
 public:
  // Locks the data directory, connects to NATS, opens the store, loads the
  // plugins, starts the runtime, then the cluster node, the HTTP server and
  // the NATS ingress, as the configuration asks. An error names the part.
  static Result<std::unique_ptr<Host>> start(const HostConfig& config, StartPause pause = {});
  static Result<std::unique_ptr<Host>> start(const HostConfig& config, HostSeams seams);
  ~Host();  // stop() if it was not called
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  // /readyz turns 503, a cluster node hands its shards off, the servers stop,
  // queued commands finish, the store is flushed and the outbox drained.
  // Idempotent; the first error is returned.
  Status stop();

  // Stops the runtime and starts a new one over the same plugins, as a
  // process restart would: the store is closed and opened again unless it
  // lives in memory or was given as HostSeams::store. Only for a host without
  // cluster, servers and ingress (the testkit's and the test harnesses').
  Status restart_runtime();

  const HostConfig& config() const;
  Runtime& runtime();
  PluginRegistry& registry();
  PluginManager& plugins();
  Metrics& metrics();
  Journal& store();
  Bus* events_bus();       // where committed events are read (NATS, or the bus the store publishes on)
  ClusterNode* cluster();  // null unless cluster.enabled
  HttpServer* http();      // null unless api.http.enabled

  struct Parts;

 private:
  explicit Host(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> p_;
};

}  // namespace aether
