// Test support: a host (app/host.hpp, the wiring aether-host uses) over one
// store backend, without NATS or servers, with the example plugins (and the
// test plugins) loaded, that a test can restart.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "app/host.hpp"
#include "bus/bus.hpp"
#include "plugin/plugin.hpp"
#include "runtime/runtime.hpp"
#include "support/store_backends.hpp"
#include "support/temp_dir.hpp"

namespace aether::test {

// The configuration of a test host in `dir`: the backend's store, no NATS,
// no HTTP server, no plugin files (the harness loads them).
inline HostConfig harness_config(const StoreBackend& backend, const std::string& dir) {
  HostConfig c;
  c.source = "<test>";
  c.node.data_dir = dir;
  c.store.backend = backend.name;
  c.store.sqlite_path = dir + "/aether.db";
  c.api.http_enabled = false;
  c.plugins.dir = dir + "/plugins";
  return c;
}

// Starts a host with `*options` as its runtime options (read again at each
// restart; it must outlive the host) over the backend's store in `dir`, or
// over `store` when given (not owned). Memory and sqlite stores publish their
// commits on `broadcast` when given.
inline std::unique_ptr<Host> start_test_host(const StoreBackend& backend, const std::string& dir,
                                             const RuntimeOptions* options, Journal* store = nullptr,
                                             Bus* broadcast = nullptr) {
  HostSeams seams;
  seams.store = store;
  seams.open_store = [backend, dir, broadcast]() -> Result<std::unique_ptr<Journal>> {
    auto s = backend.open(dir, broadcast);
    if (!s) return Status::unavailable("store backend " + backend.name + " did not open");
    return s;
  };
  seams.tune_runtime = [options](RuntimeOptions& o) { o = *options; };
  auto h = Host::start(harness_config(backend, dir), std::move(seams));
  if (!h) {
    ADD_FAILURE() << h.status().to_string();
    return nullptr;
  }
  return std::move(h).value();
}

inline void load_test_plugins(PluginRegistry& registry) {
  for (const char* p : {"bank", "counter", "order"}) {
    auto r = registry.load(std::string(AETHER_PLUGIN_DIR) + "/" + p + ".so");
    if (!r) ADD_FAILURE() << r.status().to_string();
  }
  auto r = registry.load(std::string(AETHER_TEST_PLUGIN_DIR) + "/faulty.so");
  if (!r) ADD_FAILURE() << r.status().to_string();
}

class RuntimeHarness {
 public:
  explicit RuntimeHarness(StoreBackend backend, RuntimeOptions options = {})
      : backend_(std::move(backend)), options_(std::move(options)) {
    bus_ = backend_.make_bus();
    host_ = start_test_host(backend_, dir(), &options_, nullptr, bus_.get());
    if (host_) load_test_plugins(host_->registry());
  }
  ~RuntimeHarness() { stop(); }

  Runtime& rt() { return host_->runtime(); }
  Journal& store() { return host_->store(); }
  // The bus a reader of this backend's commits subscribes to.
  Bus& bus() { return *bus_; }
  PluginRegistry& registry() { return host_->registry(); }
  RuntimeOptions& options() { return options_; }
  const std::string& dir() const { return dir_.path().native(); }

  // Stops the runtime and starts a new one (with options()); with a
  // persistent backend the store is reopened too, as after a process restart.
  void restart() {
    if (Status s = host_->restart_runtime(); !s) ADD_FAILURE() << s.to_string();
  }

  void stop() {
    if (host_) host_->runtime().shutdown();
  }

  // A second host over this harness's store (in a directory of its own),
  // with the same plugins and options().
  std::unique_ptr<Host> another_host() {
    auto h = start_test_host(backend_, dir() + "/another", &options_, &store());
    if (h) load_test_plugins(h->registry());
    return h;
  }

  CommandResult send(const std::string& type, const std::string& id, const std::string& name,
                     const std::string& payload = "{}", const std::string& ns = "default") {
    Command c;
    c.ns = ns;
    c.type = type;
    c.id = id;
    c.name = name;
    c.payload = payload;
    return host_->runtime().send_sync(std::move(c));
  }

 private:
  TempDir dir_;
  StoreBackend backend_;
  RuntimeOptions options_;
  std::unique_ptr<Bus> bus_;  // outlives the host, whose store publishes on it
  std::unique_ptr<Host> host_;
};

}  // namespace aether::test
