// aether testkit: a real aether host (runtime, store, plugin loader; no HTTP)
// inside the test's own process, for plugin authors who test their plugins
// and their upgrades against the host itself (docs/testing.md).
//
//   find_package(AetherSDK COMPONENTS testkit)
//   target_link_libraries(my_test PRIVATE AetherSDK::testkit)
//
//   aether::testkit::Host host;                      // memory store
//   ASSERT_EQ(host.load("plugins/wallet_v1.so"), "");  // "" or the error
//   EXPECT_TRUE(host.send("Wallet", "w1", "Deposit", R"({"amount":5})").ok());
//   aether::testkit::SwapReport r = host.swap("wallet", "plugins/wallet_v2.so");
//   ASSERT_TRUE(r.ok()) << r.error;
//
// This header needs C++17 and the standard library only. Every call is
// thread-safe, like the host's runtime.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace aether {
namespace testkit {

struct Options {
  // "memory" or "sqlite" (a file aether.db in data_dir).
  std::string store = "memory";
  // Where the host keeps its private plugin copies and the sqlite file.
  // Empty: a fresh temporary directory, removed with the Host. A directory
  // given here is created if missing and kept, so that a second Host can
  // open the same data.
  std::string data_dir;
  unsigned workers = 0;              // runtime worker threads; 0 = number of cores
  uint32_t snapshot_every = 100;     // snapshot after this many events (0 = never)
  int64_t call_timeout_ms = 5000;    // longest plugin call (0 = no limit)
  bool allow_breaking = false;       // let a swap drop types, commands or events
  int64_t pause_timeout_ms = 10000;  // longest wait of a swap for busy actors
};

struct Event {
  uint64_t version = 0;  // the actor's version after this event
  std::string type;
  std::string payload;  // JSON text
};

// The outcome of one command.
struct Reply {
  // "ok", "rejected" (the plugin refused; see reject_code), or the host's
  // error code: "invalid_argument", "not_found", "conflict", "unavailable",
  // "plugin_error", "plugin_timeout", "corruption", "internal".
  std::string code;
  std::string reject_code;
  std::string message;
  uint64_t version = 0;       // ok: the actor's version after the command
  std::vector<Event> events;  // ok: the events the command appended
  bool ok() const { return code == "ok"; }
};

// An actor's state as the plugin shows it.
struct State {
  bool found = false;  // false: unknown type or an actor without events
  uint64_t version = 0;
  std::string view;   // the plugin's JSON view
  std::string error;  // when not found: why
};

// What a hot swap or a rollback did.
struct SwapReport {
  std::string error;  // empty when the swap succeeded; otherwise nothing changed
  std::string plugin;
  std::string from_version;
  std::string to_version;
  uint64_t actors_migrated = 0;  // active actors moved to the new code
  uint64_t via_snapshot = 0;     // same state schema: snapshot -> restore
  uint64_t via_upgrade = 0;      // other schema: the new version's upgrade_state
  uint64_t via_replay = 0;       // other schema, no upgrade_state: events replayed
  uint64_t actors_dropped = 0;   // actors of types the new version no longer has
  double pause_ms = 0;           // how long the plugin's actors were paused
  bool ok() const { return error.empty(); }
};

// One command of a load run.
struct Command {
  std::string type;
  std::string id;
  std::string name;
  std::string payload = "{}";
  std::string ns = "default";
};

// A load run (Host::swap_under_load): `threads` threads send `commands`
// commands in total, each thread its share in order, while the swaps run.
struct LoadPlan {
  std::string plugin;              // the plugin that is swapped
  std::vector<std::string> swaps;  // files swapped to in turn, during the load
  bool rollback = false;           // then one rollback, also during the load
  unsigned threads = 8;
  uint64_t commands = 20000;
  // The i-th command (0-based, i < its share) of thread t. Called on thread t.
  std::function<Command(unsigned t, uint64_t i)> command;
};

struct LoadReport {
  uint64_t sent = 0;
  uint64_t ok = 0;
  uint64_t rejected = 0;  // refused by the plugin (a domain answer, not a failure)
  uint64_t failed = 0;    // any other outcome: these are what a swap must not cause
  std::vector<std::string> failures;  // the first 20: "Type/id Name: code: message"
  std::vector<SwapReport> steps;      // each swap, then the rollback, in order
  bool all_steps_ok() const;
};

class Host {
 public:
  explicit Host(Options options = {});
  ~Host();
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  // Loads a plugin file (through a private copy, as aether-host does).
  // Returns "" on success, otherwise the error.
  std::string load(const std::string& file);

  Reply send(const std::string& type, const std::string& id, const std::string& command,
             const std::string& payload = "{}", const std::string& ns = "default");
  Reply send(const Command& command);

  State state(const std::string& type, const std::string& id, const std::string& ns = "default");
  // The state's JSON view, or "error: <message>".
  std::string view(const std::string& type, const std::string& id,
                   const std::string& ns = "default");
  // The actor's events from version `from` (1-based), at most `limit`.
  std::vector<Event> events(const std::string& type, const std::string& id, uint64_t from = 1,
                            uint64_t limit = 1000, const std::string& ns = "default");

  // Hot swap of the loaded plugin `plugin` to the image in `file`.
  SwapReport swap(const std::string& plugin, const std::string& file);
  // Back to the version loaded before the current one.
  SwapReport rollback(const std::string& plugin);
  // The version text of the loaded plugin (empty if not loaded).
  std::string version(const std::string& plugin) const;

  // Stops the runtime and starts a new one over the same data (for sqlite,
  // the store is closed and opened again, as in a process restart). Loaded
  // plugins stay loaded; actors load again from the store.
  void restart();
  // Passivates every idle actor: the next command loads it from the store.
  void passivate_all();

  // Runs plan.commands while swapping, and reports every outcome.
  LoadReport swap_under_load(const LoadPlan& plan);

  const std::string& data_dir() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace testkit
}  // namespace aether
