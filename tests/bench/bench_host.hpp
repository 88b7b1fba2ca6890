// A benchmark's host, wired by Host::start (app/host.hpp) as aether-host's
// is: the configuration names the store and the plugins; no HTTP server and
// no NATS unless a benchmark turns them on. Logs warnings and errors only.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "app/host.hpp"
#include "config/config.hpp"
#include "core/log.hpp"

namespace aether::bench {

// `plugins` (names of .so files in AETHER_PLUGIN_DIR) over the `backend` store.
inline HostConfig host_config(std::vector<std::string> plugins, const std::string& backend = "memory") {
  HostConfig c;
  c.source = "<bench>";
  c.store.backend = backend;
  c.api.http_enabled = false;
  c.plugins.dir = AETHER_PLUGIN_DIR;
  c.plugins.list = std::move(plugins);
  return c;
}

// The sqlite store `dir`/aether.db at `synchronous` (the host's data directory is `dir`).
inline HostConfig sqlite_host_config(std::vector<std::string> plugins, const std::string& dir,
                                     const std::string& synchronous = "full") {
  HostConfig c = host_config(std::move(plugins), "sqlite");
  c.store.sqlite_path = dir + "/aether.db";
  c.store.sqlite_synchronous = synchronous;
  return c;
}

// Starts the host; a failure ends the benchmark with its message.
inline std::unique_ptr<Host> start_host(const HostConfig& config, HostSeams seams = {}) {
  static const bool quiet = log::configure("warn", "text");
  (void)quiet;
  auto h = Host::start(config, std::move(seams));
  if (!h) {
    std::fprintf(stderr, "host: %s\n", h.status().to_string().c_str());
    std::abort();
  }
  return std::move(h).value();
}

// A host over `store` as it is (not owned; it outlives the host), for
// benchmarks that start one runtime after another over the same store.
inline std::unique_ptr<Host> start_host_over(const HostConfig& config, Journal& store) {
  HostSeams seams;
  seams.store = &store;
  return start_host(config, std::move(seams));
}

}  // namespace aether::bench
