// Test support: a runtime over one store backend with the example plugins
// (and the test plugins) loaded, that a test can restart.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "bus/bus.hpp"
#include "plugin/plugin.hpp"
#include "runtime/runtime.hpp"
#include "support/store_backends.hpp"
#include "support/temp_dir.hpp"

namespace aether::test {

class RuntimeHarness {
 public:
  explicit RuntimeHarness(StoreBackend backend, RuntimeOptions options = {})
      : backend_(std::move(backend)), options_(std::move(options)) {
    for (const char* p : {"bank", "counter", "order"}) load(std::string(AETHER_PLUGIN_DIR) + "/" + p + ".so");
    load(std::string(AETHER_TEST_PLUGIN_DIR) + "/faulty.so");
    bus_ = backend_.make_bus();
    open_store();
    start();
  }
  ~RuntimeHarness() { stop(); }

  Runtime& rt() { return *runtime_; }
  Store& store() { return *store_; }
  Bus& bus() { return *bus_; }
  PluginRegistry& registry() { return registry_; }
  RuntimeOptions& options() { return options_; }
  const std::string& dir() const { return dir_.path().native(); }

  // Stops the runtime and starts a new one; with a persistent backend the
  // store is reopened too, as after a process restart.
  void restart() {
    stop();
    if (backend_.persistent) {
      store_.reset();
      open_store();
    }
    start();
  }

  void stop() {
    if (runtime_) runtime_->shutdown();
    runtime_.reset();
  }

  CommandResult send(const std::string& type, const std::string& id, const std::string& name,
                     const std::string& payload = "{}", const std::string& ns = "default") {
    Command c;
    c.ns = ns;
    c.type = type;
    c.id = id;
    c.name = name;
    c.payload = payload;
    return runtime_->send_sync(std::move(c));
  }

 private:
  void load(const std::string& path) {
    auto r = registry_.load(path);
    if (!r) ADD_FAILURE() << r.status().to_string();
  }
  void open_store() {
    store_ = backend_.open(dir_.path().string(), bus_.get());
    if (!store_) ADD_FAILURE() << "store backend " << backend_.name << " did not open";
  }
  void start() {
    auto r = Runtime::create(options_, registry_, *store_, *store_);
    if (!r) {
      ADD_FAILURE() << r.status().to_string();
      return;
    }
    runtime_ = std::move(r).value();
  }

  TempDir dir_;
  StoreBackend backend_;
  RuntimeOptions options_;
  PluginRegistry registry_;
  std::unique_ptr<Bus> bus_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Runtime> runtime_;
};

}  // namespace aether::test
