// The runtime module: actors, mailboxes, the worker pool, activation and
// passivation, and the command pipeline
//
//   validate -> activate if needed -> decide -> append(expected version)
//            -> apply -> reply
// (the store's append makes each commit visible on its events subject)
//
// This is the public runtime API that the HTTP server, the NATS ingress and
// the benchmarks all call.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/records.hpp"
#include "core/status.hpp"

namespace aether {

class Journal;
class Plugin;
class PluginRegistry;

struct SnapshotPolicy {
  uint32_t every = 100;  // snapshot after this many events since the last (0 = never)
  uint32_t keep = 2;     // snapshots kept per actor
};

// How many idempotency keys an active actor remembers (runtime/idempotency.hpp):
// its newest `keys` keyed commits, and of those only the ones younger than
// `age_ms`. A retry within that is recognised from the journal alone; an
// older key only through the store's key cache.
struct IdempotencyRetention {
  uint32_t keys = 100;  // >= 1
  int64_t age_ms = 0;   // 0 = no age limit
};

// Per actor type settings (defaults come from RuntimeOptions).
struct ActorTypeOptions {
  std::optional<SnapshotPolicy> snapshot;
  std::optional<int64_t> idle_timeout_ms;
  std::optional<uint32_t> mailbox_capacity;
  std::optional<int64_t> call_timeout_ms;
};

struct RuntimeOptions {
  std::vector<std::string> namespaces = {"default"};
  uint32_t workers = 0;                // 0 = number of cores
  // Threads for activations and idempotency lookups when the store's reads
  // are network round trips (Journal::remote_reads); unused otherwise.
  uint32_t io_threads = 16;
  uint32_t max_active_actors = 100000;  // beyond it, least recently used idle actors passivate
  int64_t idle_timeout_ms = 300000;    // idle actors passivate after this (0 = never)
  uint32_t mailbox_capacity = 1024;    // commands waiting per actor; more fail with 503
  uint32_t conflict_retries = 3;       // reload-and-retry rounds after a version conflict
  // Longest a plugin call (decide, apply, view, snapshot, restore, upgrade)
  // may take on a worker (0 = no limit). One that takes longer fails its
  // command, quarantines its actor until the plugin is reloaded, and its
  // thread is replaced in the pool (see docs/runtime.md).
  int64_t call_timeout_ms = 5000;
  // Given-up calls of one plugin image still running, past which that
  // plugin's calls are refused (each holds a thread).
  uint32_t max_stuck_calls = 8;
  SnapshotPolicy snapshot;
  IdempotencyRetention idempotency;
  std::map<std::string, ActorTypeOptions, std::less<>> types;  // by actor type name
  std::string node_id = "node-1";
  const Clock* clock = &SystemClock::instance();
};

struct Command {
  std::string ns;
  std::string type;
  std::string id;
  std::string name;      // the command name in the actor type's model
  std::string payload;   // a JSON object; empty means {}
  // When set, the command fails at once with kConflict unless the actor is
  // at exactly this version (no retry).
  std::optional<uint64_t> expected_version;
  // When set, a command with a key this actor has committed before returns
  // that first commit's result and writes nothing, also after a restart; if
  // that commit was made for another command (name or payload), it fails
  // with kRejected, reject code "idempotency_key_reused".
  std::string idempotency_key;
};

struct CommandResult {
  // kOk, kRejected (the plugin refused; see reject_code), kInvalidArgument,
  // kNotFound, kConflict, kUnavailable, kPluginError, kPluginTimeout,
  // kCorruption, kInternal.
  Status status;
  std::string reject_code;
  uint64_t version = 0;           // kOk: the actor's version after the command
  uint64_t attempted_version = 0;  // kConflict: the version the command expected
  uint64_t current_version = 0;   // kConflict: the actor's actual version
  std::vector<StoredEvent> events;  // kOk: the command's events
  bool duplicate = false;         // kOk: an idempotent replay of an earlier commit
};

using CommandCallback = std::function<void(CommandResult)>;

struct SwapOptions {
  // Allow the new version to drop actor types, commands or events that the
  // old one had (their actors are passivated; their stored events may no
  // longer replay). Off: such a swap is refused.
  bool allow_breaking = false;
  // Longest wait for the affected actors to finish the command they run.
  int64_t pause_timeout_ms = 10000;
  // Which namespaces the swap moves (runtime/plugin_versions.hpp). Empty:
  // those that run the plugin's main version, and `next` becomes the main
  // version. Else exactly these: `next` serves them as a version of their
  // own (or they follow the main version again when `next` is it).
  std::vector<std::string> namespaces;
  // Every namespace moves to `next`, which becomes the main version (a
  // canary promoted).
  bool promote = false;
};

struct SwapReport {
  std::string plugin;
  std::string from_version;
  std::string to_version;
  uint64_t actors_migrated = 0;  // active actors moved to the new code
  uint64_t via_snapshot = 0;     // same state schema: snapshot (old) -> restore (new)
  uint64_t via_upgrade = 0;      // other schema: upgrade_state of the new version
  uint64_t via_replay = 0;       // other schema, no upgrade_state: events replayed
  uint64_t actors_dropped = 0;   // actors of types the new version no longer has
  double pause_ms = 0;           // how long the plugin's actors were paused
};

// What Runtime::repair removed (or, as a dry run, would remove).
struct RepairReport {
  uint64_t records = 0;       // stored records after the version (commits, rows)
  uint64_t last_version = 0;  // the highest version they claim (0 when none says)
  uint64_t snapshots = 0;     // snapshots above the version
};

struct ActorView {
  uint64_t version = 0;
  std::string view;  // the plugin's JSON view of the state
};

struct RuntimeStats {
  uint64_t commands_ok = 0;
  uint64_t commands_rejected = 0;
  uint64_t commands_failed = 0;
  uint64_t conflicts = 0;
  // Appends that failed with "may have been applied" and were later found
  // stored: applied to the actor's state without a reload.
  uint64_t in_doubt_adopted = 0;
  uint64_t events_appended = 0;
  uint64_t snapshots_taken = 0;
  uint64_t activations = 0;
  uint64_t events_replayed = 0;    // summed over all activations
  uint64_t last_replay_length = 0;  // events replayed by the latest activation
  uint64_t passivations = 0;
  uint64_t active_actors = 0;
  uint64_t plugin_timeouts = 0;  // plugin calls given up by the watchdog
  uint64_t stuck_calls = 0;      // of those, calls that have not returned yet
};

// Hooks for metrics; called on worker threads, must be cheap and thread-safe.
class RuntimeObserver {
 public:
  virtual ~RuntimeObserver() = default;
  // outcome: "ok", "rejected", or a status code name.
  virtual void on_command(const std::string& type, const char* outcome, double seconds) = 0;
  virtual void on_activation(const std::string& type, uint64_t replayed, bool from_snapshot) = 0;
  virtual void on_snapshot(const std::string& type) = 0;
  virtual void on_events_appended(const std::string& type, size_t n) = 0;
};

class Runtime {
 public:
  // REQUIRES: registry, journal (and observer if given) outlive the Runtime.
  static Result<std::unique_ptr<Runtime>> create(RuntimeOptions options, PluginRegistry& registry,
                                                 Journal& journal, RuntimeObserver* observer = nullptr);
  virtual ~Runtime() = default;

  // Queues a command; `done` is called exactly once, on a worker thread (or
  // inline when the command is refused before queueing).
  virtual void send(Command command, CommandCallback done) = 0;
  CommandResult send_sync(Command command);

  // The plugin's view of an actor's state and its version. kNotFound for an
  // unknown namespace/type or an actor that has no events.
  Result<ActorView> state(const std::string& ns, const std::string& type, const std::string& id) {
    return query_state(ns, type, id, false);
  }
  // The same; with `reload`, a cached state is dropped and loaded again from
  // the store first (a cluster node reading an actor another node writes).
  virtual Result<ActorView> query_state(const std::string& ns, const std::string& type,
                                        const std::string& id, bool reload) = 0;

  // An actor's events from `from_version` (1-based), at most `limit`.
  virtual Result<std::vector<StoredEvent>> events(const std::string& ns, const std::string& type,
                                                  const std::string& id, uint64_t from_version,
                                                  uint64_t limit) = 0;

  virtual RuntimeStats stats() const = 0;

  // Checks ns/type/id against the model and the safe alphabet, as send() does.
  virtual Status check_actor(const std::string& ns, const std::string& type,
                             const std::string& id) const = 0;

  // The namespaces this runtime serves.
  virtual std::vector<std::string> namespaces() const = 0;

  // Up to `limit` actors of the plugin named `plugin` that hold a state in
  // memory now (the shadow check of a reload always includes them).
  virtual std::vector<ActorKey> active_actors(const std::string& plugin, size_t limit) = 0;

  // Passivates every idle actor now (tests, tools).
  virtual void passivate_all() = 0;

  // Cluster handoff: passivates every idle actor for which `which` is true,
  // first saving a snapshot of those with events since their last one (when
  // their type takes snapshots), so that the next owner loads them fast.
  // Returns how many matching actors were busy and stayed active.
  virtual size_t release(const std::function<bool(const ActorKey&)>& which) = 0;

  // Another node committed `version` of this actor: an idle active copy that
  // is older is passivated, so the next command loads the current state
  // instead of conflicting first. Busy actors find out through the store.
  virtual void note_remote_commit(const ActorKey& key, uint64_t version) = 0;

  // Hot swap: replaces the loaded plugin named next->name() by `next` while
  // running. Pauses that plugin's actors (their mailboxes keep filling),
  // moves every active actor's state to the new code, registers `next` in the
  // registry, and resumes. On any failure nothing changes: the old version
  // keeps serving with its states, and the error says what was wrong.
  virtual Result<SwapReport> swap_plugin(std::shared_ptr<const Plugin> next,
                                         const SwapOptions& options) = 0;

  // Operator repair of an actor whose history holds records that must go (a
  // record that does not decode, a forged commit): pauses the actor's type,
  // waits (bounded) until the actor runs nothing, drops its state, removes
  // from the stores every commit after `truncate_after` and the snapshots
  // above it, and resumes. The next command or read loads the actor at
  // `truncate_after`. With `dry_run`, changes nothing and says what it would
  // remove. kInvalidArgument when no commit ends at that version.
  virtual Result<RepairReport> repair(const ActorKey& key, uint64_t truncate_after, bool dry_run) = 0;

  // Refuses new commands, finishes the queued ones, flushes the store and
  // releases every actor. Idempotent; also run by the destructor.
  virtual void shutdown() = 0;
};

}  // namespace aether
