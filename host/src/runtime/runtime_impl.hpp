// RuntimeImpl, the Runtime of runtime.hpp, and the records it keeps: private
// to host/src/runtime (not installed, not included elsewhere). Its members
// are defined by concern, one file each (see the sections below).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

#include "core/worker_pool.hpp"
#include "plugin/plugin.hpp"
#include "runtime/idempotency.hpp"
#include "runtime/plugin_versions.hpp"
#include "runtime/runtime.hpp"
#include "runtime/watchdog.hpp"
#include "store/store.hpp"

// Actor lifecycle, as the code has it. An actor is one entry (Actor) in its
// shard's map, keyed by (type binding, id). enqueue() creates the entry for
// the first task of an id; erase() removes it (passivation), and only when
// evictable(): phase kIdle, mailbox empty, type not paused. Two enums
// describe an entry: its Phase (who may touch it: scheduling) and its Life
// (what it holds: no state, a guessed-new state, a loaded state).
//
// Phase:
//   kIdle       -> kScheduled   enqueue() queued a task and the type is not
//                               paused; reschedule_parked() when a swap or a
//                               repair resumes a type whose actors have tasks
//   kScheduled  -> kRunning     take() hands the next task to a worker
//   kRunning    -> kCommitting  decide_and_append(): the events went to the
//                               store; the worker is free for other actors
//   kCommitting -> kRunning     the store answered: on_committed() runs on a
//                  or kIdle     worker, then take() takes the next task, or
//                               finds none
//   kRunning    -> kIdle        take(): the mailbox is empty, or the type is
//                               paused (its tasks stay queued: "parked")
//   any         -> kIdle        call_timed_out(): the watchdog gave up a
//                               plugin call; the tasks queued are failed
// A task handed to an I/O thread (run_on_io) keeps the actor kRunning.
//
// Life (what the actor holds; Actor::take_state() and drop_state() make
// every change, and `state` is non-null exactly when it is not kUnloaded;
// touched only by the worker that runs the actor, or under the shard lock
// while it is kIdle):
//   kUnloaded   -> kLoaded      activate(): Journal::load, the latest usable
//                               snapshot + the events after it
//   kUnloaded   -> kGuessedNew  activate_as_new(): a fresh state on the guess
//                               that the actor has no events, without asking
//                               the store (stores with remote reads)
//   kGuessedNew -> kLoaded      on_committed(): the first commit's version
//                               check of "no events yet" passed
//   kGuessedNew -> kUnloaded    on_committed(): that check failed (the actor
//                               is loaded and the task decided again with
//                               CommandTask::confirm and known_latest), or
//                               the store failed; decide_and_append(): the
//                               command would not commit (a rejection, no
//                               events), so the guess cannot be checked
//   kLoaded     -> kUnloaded    deactivate(): a conflict, a reload, an apply
//                               that failed, a key the store knew (a commit
//                               this actor did not see), a read of an actor
//                               without events;
//   any loaded  -> kUnloaded    erase(): LRU beyond actors.max_active, the
//                               idle timeout, passivate_all(), release(), a
//                               newer commit of another node;
//                               drop_actor_state(): repair;
//                               install_swap(): the new plugin has no such
//                               type; call_timed_out(): the given-up call
//                               keeps the state
//   loaded      -> same         install_swap(): the state rebuilt by the new
//                               plugin while the type is paused
// An entry without a state is erased as soon as it goes idle (take()), so
// ids that are only asked for do not pile up.
//
// TypeBinding::paused (hot swap, repair): the type's actors finish the task
// they run, then park in kIdle while their mailboxes keep filling; they are
// not evictable, so nothing erases them until the type is resumed. Each
// actor of a paused type that goes idle signals parked_idle(), which the
// swap or repair waits on.

namespace aether::runtime_detail {

using SteadyClock = std::chrono::steady_clock;

// One (namespace, actor type) pair served by a loaded plugin, with its
// settings. Stable in memory for the Runtime's life.
struct TypeBinding {
  std::string ns;
  std::string type;
  std::shared_ptr<const Plugin> plugin;  // keeps the image loaded
  const ActorType* actor_type = nullptr;
  SnapshotPolicy snapshot;
  int64_t idle_timeout_ms = 0;
  uint32_t mailbox_capacity = 0;
  int64_t call_timeout_ms = 0;   // plugin calls of the type (0: no limit)
  std::string call_timeout_key;  // the setting that gave it, for messages
  mutable Quarantine quarantine;  // actors whose plugin call was given up (thread-safe)
  // Set during a hot swap: the type's actors finish what they run, then park
  // (their mailboxes keep filling) until the swap resumes them. While set,
  // nothing else touches the actors' states. `plugin` and `actor_type`
  // change only while paused (and under bind_mu_).
  std::atomic<bool> paused{false};
};

// A command in an actor's mailbox: decided, committed, applied, answered.
struct CommandTask {
  Command command;
  std::string digest;  // of a command with an idempotency key
  CommandCallback done;
  uint32_t command_index = 0;  // resolved when it runs (a swap may change the model)
  uint32_t retries = 0;        // conflicts with other writers so far
  bool confirm = false;        // load the actor from the store; no guess that it is new
  uint64_t known_latest = 0;   // the actor's version as the store just reported it (0: ask)
  AppendRequest append;        // the commit in flight; lives until the store answers
};

// A read of an actor's state in its mailbox.
struct QueryTask {
  std::string id;
  bool reload = false;  // drop a cached state and load it again
  std::function<void(Result<ActorView>)> done;
};

// What an actor's mailbox holds: a command or a query.
struct Task {
  Task* next = nullptr;
  SteadyClock::time_point start;
  std::variant<CommandTask, QueryTask> work;

  // The query, or nullptr for a command.
  QueryTask* query() { return std::get_if<QueryTask>(&work); }
  const QueryTask* query() const { return std::get_if<QueryTask>(&work); }
  // REQUIRES: a command (query() == nullptr).
  CommandTask& cmd() { return std::get<CommandTask>(work); }
  const CommandTask& cmd() const { return std::get<CommandTask>(work); }
  const std::string& id() const { return query() ? query()->id : cmd().command.id; }
  // The actor's version as the store has just reported it (0: ask).
  uint64_t known_latest() const { return query() ? 0 : cmd().known_latest; }
};

enum class Phase : uint8_t { kIdle, kScheduled, kRunning, kCommitting };

// What an actor holds (the "State" transitions above).
enum class Life : uint8_t {
  kUnloaded,    // no state: not activated yet, or dropped
  kGuessedNew,  // a fresh state on the guess that the actor has no events
                // (activate_as_new); its first commit's version check decides
  kLoaded,      // the state as the store has it (activate, or a confirmed guess)
};

struct ActorMapKey {
  const TypeBinding* binding;
  std::string id;
  bool operator==(const ActorMapKey&) const = default;
};

struct ActorMapKeyHash {
  size_t operator()(const ActorMapKey& k) const {
    return std::hash<std::string>{}(k.id) ^ (reinterpret_cast<uintptr_t>(k.binding) * 0x9E3779B97F4A7C15ull);
  }
};

// An actor: kept small, since a host holds many of them. The state handle is
// touched only by the worker that runs the actor (phase kRunning or
// kCommitting) or, under the shard lock, when the actor is idle.
struct Actor {
  const ActorMapKey* key = nullptr;  // the map key (stable in the node)
  void* state = nullptr;             // plugin state; nullptr iff life == kUnloaded
  uint64_t version = 0;
  uint64_t snapshot_version = 0;
  Task* head = nullptr;
  Task* tail = nullptr;
  Actor* lru_prev = nullptr;
  Actor* lru_next = nullptr;
  int64_t last_used_ms = 0;
  uint32_t queued = 0;
  Phase phase = Phase::kIdle;
  Life life = Life::kUnloaded;
  // The keys of its recent keyed commits, while active (null: none).
  std::unique_ptr<IdempotencyWindow> keys;
  // Its last append, while its outcome is unknown (it failed with "may
  // have been applied"): if the journal later finds it stored, its events
  // are applied to the state instead of a reload.
  std::unique_ptr<AppendRequest> in_doubt;

  bool loaded() const { return life != Life::kUnloaded; }
  // none -> active: `s` becomes the actor's state at `v`.
  void take_state(void* s, Life l, uint64_t v, uint64_t snapshot_v) {
    state = s;
    life = l;
    version = v;
    snapshot_version = snapshot_v;
  }
  // active -> none: returns the state (the caller destroys or keeps it) and
  // forgets what came with it.
  void* drop_state() {
    void* s = state;
    state = nullptr;
    life = Life::kUnloaded;
    version = 0;
    snapshot_version = 0;
    keys.reset();
    in_doubt.reset();
    return s;
  }
};

struct Shard {
  std::mutex mu;
  std::unordered_map<ActorMapKey, Actor, ActorMapKeyHash> actors;
  Actor* lru_head = nullptr;  // most recently used
  Actor* lru_tail = nullptr;
  size_t active = 0;  // actors with a state
};

constexpr size_t kShards = 64;

struct SnapshotJob {
  ActorKey key;
  Snapshot snapshot;
  uint32_t keep;
  std::string type;
};

class RuntimeImpl final : public Runtime {
 public:
  RuntimeImpl(RuntimeOptions opts, PluginRegistry& reg, Journal& journal, RuntimeObserver* observer);
  ~RuntimeImpl() override { shutdown(); }

  // Runtime (runtime.hpp). Defined in runtime.cpp, except active_actors,
  // passivate_all, release and note_remote_commit (actor_table.cpp),
  // swap_plugin (swapper.cpp) and repair (repair.cpp).
  Status check_actor(const std::string& ns, const std::string& type,
                     const std::string& id) const override;
  void send(Command c, CommandCallback done) override;
  Result<ActorView> query_state(const std::string& ns, const std::string& type, const std::string& id,
                                bool reload) override;
  Result<std::vector<StoredEvent>> events(const std::string& ns, const std::string& type,
                                          const std::string& id, uint64_t from,
                                          uint64_t limit) override;
  RuntimeStats stats() const override;
  void shutdown() override;
  std::vector<ActorKey> active_actors(const std::string& plugin, size_t limit) override;
  void passivate_all() override;
  size_t release(const std::function<bool(const ActorKey&)>& which) override;
  void note_remote_commit(const ActorKey& key, uint64_t version) override;
  Result<SwapReport> swap_plugin(std::shared_ptr<const Plugin> next,
                                 const SwapOptions& options) override;
  Result<RepairReport> repair(const ActorKey& key, uint64_t truncate_after, bool dry_run) override;
  std::vector<std::string> namespaces() const override { return opts_.namespaces; }

 private:
  // A plugin call under the watchdog, for call_timed_out.
  struct CallSite {
    Task* task;     // the task it runs for (nullptr: none waits on it)
    Actor* actor;
    void* state;    // the state it uses: the actor's, or one being loaded
    const char* hook;
    const CommandResult* committed = nullptr;  // the task's events are stored: its reply
  };

  // --- runtime.cpp: validation, start and stop ---------------------------------
  static int64_t watchdog_tick(const RuntimeOptions& o);
  Result<TypeBinding*> resolve(const std::string& ns, const std::string& type,
                               const std::string& id) const;
  static Status check_payload(const std::string& payload);

  bool stopped_flag() {
    return stopped_.load();
  }

  // --- actor_table.cpp: shards, mailboxes, LRU, passivation --------------------
  void enqueue(TypeBinding* b, Task* t);
  void requeue_front(Actor* a, Task* t);
  Task* take(Actor* a);
  void drive(Actor* a);
  void set_phase(Actor* a, Phase p);
  void deactivate(Actor* a);
  void note_activated(Actor* self);
  void erase(Shard& s, Actor* a);
  void lru_unlink(Shard& s, Actor* a);
  void lru_touch(Shard& s, Actor* a);
  void janitor_loop();

  Shard& shard_of(const TypeBinding* b, const std::string& id) {
    return shards_[ActorMapKeyHash{}(ActorMapKey{b, id}) % kShards];
  }

  static bool evictable(const Actor& a) {
    return a.phase == Phase::kIdle && a.head == nullptr && !a.key->binding->paused.load();
  }

  template <class Pred>
  void sweep(Shard& s, Pred&& pred) {
    for (Actor* a = s.lru_tail; a != nullptr;) {
      Actor* prev = a->lru_prev;
      if (evictable(*a) && pred(*a)) erase(s, a);
      a = prev;
    }
  }

  // --- command_pipeline.cpp: running a task, committing, replying --------------
  bool run_on_io(Actor* a, Task* t);
  bool run(Actor* a, Task* t);
  std::optional<bool> prepare(Actor* a, Task* t);
  bool admit_command(Actor* a, Task* t, const ActorKey& key);
  bool decide_and_append(Actor* a, Task* t, const ActorKey& key);
  bool answer_query(Actor* a, Task* t);
  bool on_committed(Actor* a, Task* t, AppendRequest& req, AppendResult r);
  bool apply_committed(Actor* a, Task* t, AppendRequest& req, const AppendResult& r);
  // Applies `doubt` (the actor's append whose outcome was unknown, now found
  // stored as versions up to `current`) to its state. False when it does not
  // follow the state, or a plugin call failed or was given up (given_up).
  bool adopt_in_doubt(Actor* a, Task* t, const AppendRequest& doubt, uint64_t current);
  static CommandResult conflict_result(const ActorKey& key, uint64_t attempted, uint64_t current);
  CommandResult keyed_result(const ActorKey& key, const std::string& idempotency_key, const std::string& digest,
                             const IdempotentCommit& first);
  CommandResult duplicate_result(const ActorKey& key, const IdempotentCommit& c);
  void finish(Task* t, const TypeBinding& b, CommandResult r);
  void answer(Task* t, const TypeBinding& b, CommandResult r);
  void finish_early(const std::string& type, CommandCallback done, Status s,
                    SteadyClock::time_point start);
  void fail_task(Task* t, Status s);
  void done_task(Task* t);
  void task_done();

  static Status no_events(const TypeBinding& b, const std::string& id) {
    return Status::not_found("actor " + b.ns + "/" + b.type + "/" + id + " has no events");
  }

  static CommandResult error_result(Status s) {
    CommandResult r;
    r.status = std::move(s);
    return r;
  }

  // --- activation.cpp: loading an actor (snapshot + events) --------------------
  bool may_assume_new(const Actor* a, const Task* t) const;
  Status activate_as_new(Actor* a);
  Status activate(Actor* a, Task* t);
  class Loader;  // the LoadSink of activate()
  bool use_snapshot(const CallSite& site, const ActorKey& key, const ActorType& type,
                    const Snapshot& s);

  // --- snapshots.cpp: snapshot policy and the snapshot thread ------------------
  void maybe_snapshot(Actor* a, Task* t);
  std::optional<SnapshotJob> snapshot_job(Actor* a);
  std::optional<SnapshotJob> snapshot_job(Actor* a, Result<std::string> bytes);
  void save_snapshot(const SnapshotJob& job);
  void snapshot_loop();

  // --- swapper.cpp: hot swap of a plugin ---------------------------------------
  void parked_idle(const TypeBinding& b);
  bool wait_parked(SteadyClock::time_point deadline, const std::function<bool()>& settled);
  Status check_swap(const std::shared_ptr<const Plugin>& current, const Plugin& next,
                    const SwapOptions& options);
  Status wait_paused_idle(const Plugin& next, const SwapOptions& options, std::vector<Actor*>& actors);
  Status migrate_all(const std::vector<Actor*>& actors, const Plugin& current, const Plugin& next,
                     SwapReport& report, std::vector<void*>& fresh);
  void install_swap(const std::vector<Actor*>& actors, const std::vector<void*>& fresh,
                    const std::vector<TypeBinding*>& affected, const std::shared_ptr<const Plugin>& next,
                    const SwapScope& scope);
  Result<void*> migrate_state(Actor* a, const ActorType& ot, const ActorType& nt, SwapReport& report);
  void reschedule_parked(const std::vector<TypeBinding*>& bindings);
  std::vector<TypeBinding*> end_swap(const std::shared_ptr<const Plugin>& serving);

  // --- repair.cpp: truncating an actor's history -------------------------------
  Result<RepairReport> truncate_stores(const ActorKey& key, uint64_t version, bool dry_run);
  bool wait_actor_idle(TypeBinding& b, const std::string& id);
  void drop_actor_state(TypeBinding& b, const std::string& id);

  // --- plugin_calls.cpp: plugin calls under the watchdog -----------------------
  Status callable(const TypeBinding& b, const std::string& id) const;
  static std::string format_ms(int64_t ms);
  Watchdog::Release call_timed_out(const CallSite& site);

  // Runs a plugin call for site.actor, on the worker that runs the actor,
  // within its type's call_timeout. Returns false iff the watchdog gave it
  // up: call_timed_out has answered for it and taken the actor over, and the
  // caller returns at once touching neither the actor, the task nor the state.
  template <class F>
  bool watched(const CallSite& site, F&& call) {
    const TypeBinding& b = *site.actor->key->binding;
    if (watchdog_.run(b.call_timeout_ms, b.plugin.get(), &site, std::forward<F>(call))) return true;
    given_up = true;
    return false;
  }

  static constexpr size_t kMaxQueuedSnapshots = 10000;

  RuntimeOptions opts_;
  PluginRegistry& registry_;
  Journal& journal_;
  RuntimeObserver* observer_;

  std::mutex swap_mu_;  // one hot swap at a time
  // Counts actors of paused types going idle (parked_idle()), so that a
  // swap or a repair waits for its actors to park without polling.
  std::mutex parked_mu_;
  std::condition_variable parked_cv_;
  uint64_t parked_count_ = 0;  // under parked_mu_
  mutable std::shared_mutex bind_mu_;
  mutable std::unordered_map<std::string, std::unique_ptr<TypeBinding>> bindings_;
  // The swap that runs, under bind_mu_: a binding of its plugin in its scope
  // that resolve() creates meanwhile starts paused, in `late`, and end_swap()
  // binds it to the version the swap leaves in place before it resumes.
  struct SwapInProgress {
    const SwapScope* scope = nullptr;
    std::string plugin;
    std::vector<TypeBinding*> late;
  };
  mutable SwapInProgress swapping_;

  std::array<Shard, kShards> shards_;
  size_t per_shard_max_ = 1;

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> stopped_{false};
  std::atomic<uint64_t> in_flight_{0};

  std::mutex snap_mu_;
  std::condition_variable snap_cv_;
  std::deque<SnapshotJob> snap_queue_;
  std::mutex snap_save_mu_;  // held while the snapshotter saves one

  std::atomic<uint64_t> commands_ok_{0}, commands_rejected_{0}, commands_failed_{0},
      conflicts_{0}, events_appended_{0}, snapshots_taken_{0}, activations_{0},
      events_replayed_{0}, last_replay_length_{0}, passivations_{0}, active_actors_{0}, in_doubt_adopted_{0};

  WorkerPool pool_;
  std::unique_ptr<WorkerPool> io_pool_;  // when the store's reads are remote
  static thread_local bool on_io_thread;
  // Set on a thread whose plugin call the watchdog gave up: it returns to
  // its pool touching nothing of its actor or task.
  static thread_local bool given_up;
  std::thread janitor_;
  std::thread snapshotter_;
  // Last: its thread calls call_timed_out, which uses the members above.
  Watchdog watchdog_{*opts_.clock, watchdog_tick(opts_),
                     [this](const void* site) { return call_timed_out(*static_cast<const CallSite*>(site)); }};
};

}  // namespace aether::runtime_detail
