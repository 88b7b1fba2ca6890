// aether testkit: an aether host in the test's own process, for plugin
// authors who test their upgrades (docs/hot-swap.md).
//
//   aether::testkit::TestHost host;
//   ASSERT_TRUE(host.load("build/plugins/tally_v1.so").is_ok());
//   host.send("Tally", "t1", "Add", R"({"n":5})");
//   auto report = host.swap("tally", "build/plugins/tally_v2.so");
//   ASSERT_TRUE(report.is_ok()) << report.status().to_string();
//   EXPECT_EQ(host.view("Tally", "t1"), R"({"ops":0,"total":5,"v":2})");
//   EXPECT_FALSE(host.is_mapped(old_copy));
//
// It is wired like aether-host (app/host.hpp: Host::start over a HostConfig
// with the memory or sqlite store, without NATS and the HTTP server), so it
// runs the real runtime, store and plugin loader and locks its directory.
// Thread-safe like the runtime.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "core/status.hpp"
#include "runtime/runtime.hpp"
#include "runtime/shadow_check.hpp"

namespace aether {
class PluginManager;
class PluginRegistry;
class Journal;
}  // namespace aether

namespace aether::testkit {

struct TestHostOptions {
  // "memory" or "sqlite" (a file in a temporary directory of the host).
  std::string store = "memory";
  // The host's directory (plugin copies, the sqlite file). Empty: a fresh
  // temporary directory, removed with the host; a given one is kept.
  std::string dir;
  RuntimeOptions runtime;
  SwapOptions swap;
  // Run the shadow check before each swap (runtime/shadow_check.hpp), as
  // aether-host does by default. Off unless set.
  std::optional<ShadowOptions> shadow;
};

class TestHost {
 public:
  explicit TestHost(TestHostOptions options = {});
  ~TestHost();

  // Loads a plugin (through a private copy, as aether-host does).
  Status load(const std::string& file);

  CommandResult send(const std::string& type, const std::string& id, const std::string& command,
                     const std::string& payload = "{}", const std::string& ns = "default");
  Result<ActorView> state(const std::string& type, const std::string& id,
                          const std::string& ns = "default");
  // The state's JSON view, or "error: <message>".
  std::string view(const std::string& type, const std::string& id, const std::string& ns = "default");

  // Hot swap to the plugin image in `file`.
  Result<aether::SwapReport> swap(const std::string& plugin, const std::string& file);
  // Back to the version loaded before the current one.
  Result<aether::SwapReport> rollback(const std::string& plugin);

  // The version text of the loaded plugin `plugin` ("" if not loaded).
  std::string version(const std::string& plugin) const;
  // The private copy the current image of `plugin` was loaded from.
  std::string loaded_file(const std::string& plugin) const;
  // True iff /proc/self/maps has a mapping of `file`.
  static bool is_mapped(const std::string& file);
  // Mappings of files under the host's private plugin directory.
  int plugin_mappings() const;
  // The host's directory (TestHostOptions::dir or its temporary one).
  std::string dir() const;

  // Restarts the runtime over the same store (a process restart for a
  // sqlite store; the memory store keeps its data too).
  void restart();

  Runtime& runtime();
  Journal& store();
  PluginRegistry& registry();
  PluginManager& plugins();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace aether::testkit
