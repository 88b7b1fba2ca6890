#include "runtime/runtime.hpp"

#include <aether/host_rules.hpp>
#include <nlohmann/json.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include "core/conflict.hpp"
#include "core/json_limits.hpp"
#include "core/log.hpp"
#include "core/names.hpp"
#include "plugin/plugin.hpp"
#include "core/worker_pool.hpp"
#include "runtime/idempotency.hpp"
#include "runtime/plugin_versions.hpp"
#include "store/store.hpp"
#include "runtime/watchdog.hpp"

namespace aether {

CommandResult Runtime::send_sync(Command command) {
  std::promise<CommandResult> p;
  auto f = p.get_future();
  send(std::move(command), [&p](CommandResult r) { p.set_value(std::move(r)); });
  return f.get();
}

namespace {

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

// A queued command or state query.
struct Task {
  Task* next = nullptr;
  bool query = false;
  bool reload = false;  // query: drop a cached state and load it again
  uint32_t command_index = 0;
  uint32_t retries = 0;
  bool confirm = false;  // load the actor from the store; no guess that it is new
  uint64_t known_latest = 0;  // the actor's version as the store just reported it (0: ask)
  Command command;
  std::string digest;  // of a command with an idempotency key
  CommandCallback done;
  std::function<void(Result<ActorView>)> query_done;
  SteadyClock::time_point start;
  AppendRequest append;  // the commit in flight; lives until the store answers
};

enum class Phase : uint8_t { kIdle, kScheduled, kRunning, kCommitting };

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
  void* state = nullptr;             // plugin state; nullptr = not activated
  uint64_t version = 0;
  uint64_t snapshot_version = 0;
  Task* head = nullptr;
  Task* tail = nullptr;
  Actor* lru_prev = nullptr;
  Actor* lru_next = nullptr;
  int64_t last_used_ms = 0;
  uint32_t queued = 0;
  Phase phase = Phase::kIdle;
  // The state is a guess that the actor has no events yet, made without
  // asking the store; the first commit's version check confirms it.
  bool assumed_new = false;
  // The keys of its recent keyed commits, while active (null: none).
  std::unique_ptr<IdempotencyWindow> keys;
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
  RuntimeImpl(RuntimeOptions opts, PluginRegistry& reg, EventStore& events,
              SnapshotStore& snapshots, RuntimeObserver* observer)
      : opts_(std::move(opts)),
        registry_(reg),
        events_(events),
        snapshots_(snapshots),
        observer_(observer),
        pool_(opts_.workers == 0 ? std::max(2u, std::thread::hardware_concurrency())
                                 : opts_.workers,
              "aether-worker") {
    per_shard_max_ = std::max<size_t>(1, (opts_.max_active_actors + kShards - 1) / kShards);
    if (events_.remote_reads()) io_pool_ = std::make_unique<WorkerPool>(std::max(1u, opts_.io_threads), "aether-io");
    janitor_ = std::thread([this] { janitor_loop(); });
    snapshotter_ = std::thread([this] { snapshot_loop(); });
  }

  // A quarter of the shortest call limit, within [5 ms, 100 ms].
  static int64_t watchdog_tick(const RuntimeOptions& o) {
    int64_t shortest = o.call_timeout_ms > 0 ? o.call_timeout_ms : INT64_MAX;
    for (const auto& [_, t] : o.types) {
      if (t.call_timeout_ms && *t.call_timeout_ms > 0) shortest = std::min(shortest, *t.call_timeout_ms);
    }
    return std::clamp<int64_t>(shortest / 4, 5, 100);
  }

  ~RuntimeImpl() override { shutdown(); }

  Status check_actor(const std::string& ns, const std::string& type,
                     const std::string& id) const override {
    return resolve(ns, type, id).status();
  }

  void send(Command c, CommandCallback done) override {
    const auto start = SteadyClock::now();
    auto b = resolve(c.ns, c.type, c.id);
    if (!b) return finish_early(c.type, std::move(done), b.status(), start);
    if (c.payload.empty()) c.payload = "{}";
    if (Status s = check_payload(c.payload); !s) {
      return finish_early(c.type, std::move(done), s, start);
    }
    if (!c.idempotency_key.empty() && (c.idempotency_key.size() > 256 ||
                                       !is_valid_utf8(c.idempotency_key))) {
      return finish_early(c.type, std::move(done),
                          Status::invalid("idempotency key must be valid UTF-8 of at most 256 bytes"),
                          start);
    }
    auto* t = new Task();
    if (!c.idempotency_key.empty()) t->digest = command_digest(c.name, c.payload);
    t->command = std::move(c);
    t->done = std::move(done);
    t->start = start;
    enqueue(*b, t);
  }

  Result<ActorView> query_state(const std::string& ns, const std::string& type, const std::string& id,
                                bool reload) override {
    auto b = resolve(ns, type, id);
    if (!b) return b.status();
    std::promise<Result<ActorView>> p;
    auto f = p.get_future();
    auto* t = new Task();
    t->query = true;
    t->reload = reload;
    t->command.id = id;
    t->query_done = [&p](Result<ActorView> r) { p.set_value(std::move(r)); };
    t->start = SteadyClock::now();
    enqueue(*b, t);
    return f.get();
  }

  Result<std::vector<StoredEvent>> events(const std::string& ns, const std::string& type,
                                          const std::string& id, uint64_t from,
                                          uint64_t limit) override {
    auto b = resolve(ns, type, id);
    if (!b) return b.status();
    return events_.read_all(ActorKey{ns, type, id}, from, limit);
  }

  RuntimeStats stats() const override {
    RuntimeStats s;
    s.commands_ok = commands_ok_.load();
    s.commands_rejected = commands_rejected_.load();
    s.commands_failed = commands_failed_.load();
    s.conflicts = conflicts_.load();
    s.events_appended = events_appended_.load();
    s.snapshots_taken = snapshots_taken_.load();
    s.activations = activations_.load();
    s.events_replayed = events_replayed_.load();
    s.last_replay_length = last_replay_length_.load();
    s.passivations = passivations_.load();
    s.active_actors = active_actors_.load();
    s.plugin_timeouts = watchdog_.given_up_total();
    s.stuck_calls = watchdog_.stuck_total();
    return s;
  }

  std::vector<std::string> namespaces() const override { return opts_.namespaces; }

  std::vector<ActorKey> active_actors(const std::string& plugin, size_t limit) override {
    std::vector<const TypeBinding*> mine;
    {
      std::shared_lock lock(bind_mu_);
      for (const auto& [_, b] : bindings_) {
        if (b->plugin != nullptr && b->plugin->name() == plugin) mine.push_back(b.get());
      }
    }
    std::vector<ActorKey> out;
    for (Shard& s : shards_) {
      std::lock_guard lock(s.mu);
      for (const auto& [key, a] : s.actors) {
        if (out.size() >= limit) return out;
        if (a.state == nullptr || std::find(mine.begin(), mine.end(), key.binding) == mine.end()) continue;
        out.push_back(ActorKey{key.binding->ns, key.binding->type, key.id});
      }
    }
    return out;
  }

  void passivate_all() override {
    for (Shard& s : shards_) {
      std::lock_guard lock(s.mu);
      sweep(s, [](const Actor&) { return true; });
    }
  }

  size_t release(const std::function<bool(const ActorKey&)>& which) override {
    size_t busy = 0;
    std::vector<SnapshotJob> jobs;
    for (Shard& s : shards_) {
      std::lock_guard lock(s.mu);
      for (Actor* a = s.lru_tail; a != nullptr;) {
        Actor* prev = a->lru_prev;
        const TypeBinding& b = *a->key->binding;
        if (which(ActorKey{b.ns, b.type, a->key->id})) {
          if (!evictable(*a)) {
            ++busy;
          } else {
            if (a->state != nullptr && b.snapshot.every > 0 && a->version > a->snapshot_version) {
              if (auto job = snapshot_job(a)) jobs.push_back(std::move(*job));
            }
            erase(s, a);
          }
        }
        a = prev;
      }
    }
    // Saved in parallel: each save is a round trip to the store.
    std::atomic<size_t> next{0};
    auto save_some = [&] {
      for (size_t i = next.fetch_add(1); i < jobs.size(); i = next.fetch_add(1)) save_snapshot(jobs[i]);
    };
    std::vector<std::thread> savers;
    for (size_t t = 1; t < std::min<size_t>(8, jobs.size() / 4 + 1); ++t) savers.emplace_back(save_some);
    save_some();
    for (auto& t : savers) t.join();
    return busy;
  }

  void note_remote_commit(const ActorKey& key, uint64_t version) override {
    TypeBinding* b = nullptr;
    {
      std::shared_lock lock(bind_mu_);
      auto it = bindings_.find(key.ns + '\x1f' + key.type);
      if (it == bindings_.end()) return;
      b = it->second.get();
    }
    Shard& s = shard_of(b, key.id);
    std::lock_guard lock(s.mu);
    auto it = s.actors.find(ActorMapKey{b, key.id});
    if (it == s.actors.end()) return;
    Actor* a = &it->second;
    // evictable() first: only an idle actor's state and version are not being
    // written by a worker (activation writes them without s.mu).
    if (evictable(*a) && a->state != nullptr && a->version < version) erase(s, a);
  }

  void shutdown() override {
    {
      std::unique_lock lock(stop_mu_);
      if (stopped_) return;
      stopping_.store(true);
      // Finish what was queued: every task holds one count of in_flight_.
      stop_cv_.wait(lock, [&] { return in_flight_ == 0; });
      stopped_ = true;
    }
    stop_cv_.notify_all();
    janitor_.join();
    snap_cv_.notify_all();
    snapshotter_.join();
    // Joins threads replaced by the watchdog too: waits for stuck plugin
    // calls to return (the watchdog keeps answering for late ones).
    if (io_pool_) io_pool_->stop();
    pool_.stop();
    watchdog_.stop();
    if (Status s = events_.flush(); !s) log::error("runtime shutdown: store flush: " + s.message());
    passivate_all();
  }

  // Whether `next` may replace `current` (same name loaded, ABI and model
  // rules of the registry, nothing dropped unless breaking swaps are allowed).
  Status check_swap(const std::shared_ptr<const Plugin>& current, const Plugin& next,
                    const SwapOptions& options) {
    if (!current) return Status::not_found("no plugin named " + next.name() + " is loaded");
    if (Status s = registry_.check_replace(next); !s) return s;
    if (options.allow_breaking) return Status::ok();
    const auto breaks = breaking_changes(*current, next);
    if (breaks.empty()) return Status::ok();
    std::string m;
    for (const auto& b : breaks) m += (m.empty() ? "" : "; ") + b;
    return Status::invalid("plugin " + next.name() + " " + next.version() + " drops what version " +
                           current->version() + " has: " + m + " (set plugins.allow_breaking_reload to allow it)");
  }

  // Waits (bounded) until no actor of a paused binding runs a command; then
  // `actors` holds those of them with a state.
  Status wait_paused_idle(const Plugin& next, const SwapOptions& options, std::vector<Actor*>& actors) {
    const auto deadline = SteadyClock::now() + std::chrono::milliseconds(options.pause_timeout_ms);
    for (;;) {
      actors.clear();
      bool busy = false;
      for (Shard& s : shards_) {
        std::lock_guard lock(s.mu);
        for (auto& [key, a] : s.actors) {
          if (!key.binding->paused.load()) continue;
          if (a.phase != Phase::kIdle) busy = true;
          if (a.state != nullptr) actors.push_back(&a);
        }
      }
      if (!busy) return Status::ok();
      if (SteadyClock::now() > deadline) {
        return Status::unavailable("swap of plugin " + next.name() + " aborted: its actors did not "
                                   "finish their commands within " +
                                   std::to_string(options.pause_timeout_ms) + " ms");
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }

  // Builds each active actor's state with the new code into `fresh`, keeping
  // the old one; on an error, what was built is destroyed again. Paused
  // actors are touched by nobody else.
  Status migrate_all(const std::vector<Actor*>& actors, const Plugin& current, const Plugin& next,
                     SwapReport& report, std::vector<void*>& fresh) {
    fresh.assign(actors.size(), nullptr);
    for (size_t i = 0; i < actors.size(); ++i) {
      Actor* a = actors[i];
      const TypeBinding& b = *a->key->binding;
      const ActorType* nt = next.find_type(b.type);
      if (nt == nullptr) {
        ++report.actors_dropped;
        continue;
      }
      auto moved = migrate_state(a, *b.actor_type, *nt, report);
      if (!moved) {
        for (size_t j = 0; j < i; ++j) {
          if (fresh[j] != nullptr) next.find_type(actors[j]->key->binding->type)->destroy(fresh[j]);
        }
        return Status(moved.status().code(), "swap of plugin " + next.name() + " to " + next.version() +
                                                 " aborted, version " + current.version() +
                                                 " keeps serving: actor " + b.ns + "/" + b.type + "/" +
                                                 a->key->id + ": " + moved.status().message());
      }
      fresh[i] = *moved;
      ++report.actors_migrated;
    }
    return Status::ok();
  }

  // Commit: release old states, install new ones, rebind the types.
  void install_swap(const std::vector<Actor*>& actors, const std::vector<void*>& fresh,
                    const std::vector<TypeBinding*>& affected, const std::shared_ptr<const Plugin>& next,
                    const SwapScope& scope) {
    for (size_t i = 0; i < actors.size(); ++i) {
      Actor* a = actors[i];
      a->key->binding->actor_type->destroy(a->state);
      a->state = fresh[i];
      if (fresh[i] == nullptr) {
        a->version = 0;
        a->snapshot_version = 0;
        a->keys.reset();
        Shard& s = shard_of(a->key->binding, a->key->id);
        std::lock_guard lock(s.mu);
        --s.active;
        active_actors_.fetch_sub(1);
      }
    }
    std::unique_lock lock(bind_mu_);
    for (TypeBinding* b : affected) {
      b->plugin = next;
      b->actor_type = next->find_type(b->type);
      b->quarantine.clear();  // the code whose call was given up is gone
    }
    // Types that were gone and come back with this version.
    for (auto& [_, b] : bindings_) {
      if (b->actor_type == nullptr && scope.covers(b->ns) && next->find_type(b->type) != nullptr) {
        b->plugin = next;
        b->actor_type = next->find_type(b->type);
      }
    }
  }

  Result<SwapReport> swap_plugin(std::shared_ptr<const Plugin> next,
                                 const SwapOptions& options) override {
    std::lock_guard swap_lock(swap_mu_);
    const auto started = SteadyClock::now();
    const SwapScope scope(registry_, next->name(), options);
    const auto& current = scope.from();
    if (Status s = check_swap(current, *next, options); !s) return s;
    SwapReport report;
    report.plugin = next->name();
    report.from_version = current->version();
    report.to_version = next->version();

    // Pause every binding the swap moves (runtime/plugin_versions.hpp), wait
    // until none of their actors runs a command, move their states, rebind.
    std::vector<TypeBinding*> affected;
    {
      std::shared_lock lock(bind_mu_);
      for (auto& [_, b] : bindings_) {
        if (b->plugin->name() == next->name() && b->plugin != next && scope.covers(b->ns)) {
          affected.push_back(b.get());
        }
      }
    }
    for (TypeBinding* b : affected) b->paused.store(true);
    auto resume = [&] {
      for (TypeBinding* b : affected) b->paused.store(false);
      reschedule_parked(affected);
    };
    std::vector<Actor*> actors;
    std::vector<void*> fresh;
    Status moved = wait_paused_idle(*next, options, actors);
    if (moved) moved = migrate_all(actors, *current, *next, report, fresh);
    if (!moved) {
      resume();
      return moved;
    }
    install_swap(actors, fresh, affected, next, scope);
    if (Status s = scope.commit(registry_, next); !s) {
      // check_replace passed under the same swap lock; only a concurrent
      // load() could get here.
      log::error("swap of plugin " + next->name() + ": registry: " + s.message());
    }
    resume();
    report.pause_ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - started).count();
    log::info("plugin " + next->name() + " swapped " + report.from_version + " -> " + report.to_version + ": " +
              std::to_string(report.actors_migrated) + " active actors moved (" +
              std::to_string(report.via_snapshot) + " by snapshot, " + std::to_string(report.via_upgrade) +
              " by upgrade_state, " + std::to_string(report.via_replay) + " by replay) in " +
              std::to_string(report.pause_ms) + " ms");
    return report;
  }

  Result<RepairReport> repair(const ActorKey& key, uint64_t truncate_after, bool dry_run) override {
    auto b = resolve(key.ns, key.type, key.id);
    if (!b) return b.status();
    // Checks the version first: nothing is paused or dropped for a repair
    // that the store refuses.
    auto plan = truncate_stores(key, truncate_after, true);
    if (!plan || dry_run) return plan;
    std::lock_guard swap_lock(swap_mu_);  // a swap would resume the type under us
    std::vector<TypeBinding*> affected{*b};
    (*b)->paused.store(true);
    const bool idle = wait_actor_idle(**b, key.id);
    if (idle) {
      drop_actor_state(**b, key.id);
      std::lock_guard lock(snap_mu_);
      std::erase_if(snap_queue_, [&](const SnapshotJob& j) {
        return j.key == key && j.snapshot.version > truncate_after;
      });
    }
    std::unique_lock saving(snap_save_mu_);  // no snapshot of the old state lands after the truncation
    auto done = idle ? truncate_stores(key, truncate_after, false)
                     : Result<RepairReport>(Status::unavailable(
                           "repair of " + key.to_string() + ": the actor did not finish its command in time"));
    saving.unlock();
    (*b)->paused.store(false);
    reschedule_parked(affected);
    if (done) {
      log::warn("repair: " + key.to_string() + " truncated after version " + std::to_string(truncate_after) +
                ": " + std::to_string(done->records) + " records and " + std::to_string(done->snapshots) +
                " snapshots removed");
    }
    return done;
  }

 private:
  // A plugin call under the watchdog, for call_timed_out.
  struct CallSite {
    Task* task;     // the task it runs for (nullptr: none waits on it)
    Actor* actor;
    void* state;    // the state it uses: the actor's, or one being loaded
    const char* hook;
    const CommandResult* committed = nullptr;  // the task's events are stored: its reply
  };

  // The state of paused actor `a` rebuilt with the new code.
  Result<void*> migrate_state(Actor* a, const ActorType& ot, const ActorType& nt, SwapReport& report) {
    auto created = nt.create();
    if (!created) return created.status();
    void* state = *created;
    auto fail = [&](Status s) -> Result<void*> {
      nt.destroy(state);
      return s;
    };
    if (ot.schema_version() == nt.schema_version() || nt.has_upgrade()) {
      auto bytes = ot.snapshot(a->state);
      if (!bytes) return fail(bytes.status());
      std::string input = std::move(bytes).value();
      if (ot.schema_version() != nt.schema_version()) {
        auto up = nt.upgrade(ot.schema_version(), input);
        if (!up) return fail(up.status());
        input = std::move(up).value();
        ++report.via_upgrade;
      } else {
        ++report.via_snapshot;
      }
      if (Status s = nt.restore(state, input); !s) return fail(s);
      return state;
    }
    // Another schema and no upgrade: replay the actor's events through the
    // new reducers.
    const TypeBinding& b = *a->key->binding;
    uint64_t version = 0;
    Status rs = events_.read(ActorKey{b.ns, b.type, a->key->id}, 1, a->version,
                             [&](const StoredEvent& e) {
                               const int idx = nt.event_index(e.type);
                               if (idx < 0) {
                                 return Status::plugin_error("the new version has no event " + e.type);
                               }
                               version = e.version;
                               return nt.apply(state, static_cast<uint32_t>(idx), e.payload, e.version);
                             });
    if (!rs) return fail(rs);
    if (version != a->version) {
      return fail(Status::corruption("replay reached version " + std::to_string(version) +
                                     ", the actor is at " + std::to_string(a->version)));
    }
    ++report.via_replay;
    return state;
  }

  // Repair: the stores' part (snapshots first: without them the actor
  // replays from its events, which is always right).
  Result<RepairReport> truncate_stores(const ActorKey& key, uint64_t version, bool dry_run) {
    uint64_t snapshots = 0;
    if (!dry_run) {
      auto n = snapshots_.drop_after(key, version, false);
      if (!n) return n.status();
      snapshots = *n;
    }
    auto t = events_.truncate_after(key, version, dry_run);
    if (!t) return t.status();
    if (dry_run) {
      auto n = snapshots_.drop_after(key, version, true);
      if (!n) return n.status();
      snapshots = *n;
    }
    return RepairReport{t->records, t->last_version, snapshots};
  }

  // Waits (bounded) until the actor of a paused type runs nothing.
  bool wait_actor_idle(TypeBinding& b, const std::string& id) {
    Shard& s = shard_of(&b, id);
    const auto deadline = SteadyClock::now() + std::chrono::seconds(10);
    for (;;) {
      {
        std::lock_guard lock(s.mu);
        auto it = s.actors.find(ActorMapKey{&b, id});
        if (it == s.actors.end() || it->second.phase == Phase::kIdle) return true;
      }
      if (SteadyClock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }

  // Drops the state of an idle actor of a paused type; its mailbox stays.
  void drop_actor_state(TypeBinding& b, const std::string& id) {
    Shard& s = shard_of(&b, id);
    std::lock_guard lock(s.mu);
    auto it = s.actors.find(ActorMapKey{&b, id});
    if (it == s.actors.end() || it->second.state == nullptr) return;
    Actor& a = it->second;
    b.actor_type->destroy(a.state);
    a.state = nullptr;
    a.version = 0;
    a.snapshot_version = 0;
    a.assumed_new = false;
    --s.active;
    active_actors_.fetch_sub(1);
    passivations_.fetch_add(1);
  }

  // Schedules actors whose mailboxes filled while their type was paused.
  void reschedule_parked(const std::vector<TypeBinding*>& bindings) {
    std::vector<Actor*> ready;
    for (Shard& s : shards_) {
      std::lock_guard lock(s.mu);
      for (auto& [key, a] : s.actors) {
        if (a.phase != Phase::kIdle || a.head == nullptr) continue;
        if (std::find(bindings.begin(), bindings.end(), key.binding) == bindings.end()) continue;
        a.phase = Phase::kScheduled;
        ready.push_back(&a);
      }
    }
    for (Actor* a : ready) pool_.post([this, a] { drive(a); });
  }

  // --- validation -----------------------------------------------------------

  Result<TypeBinding*> resolve(const std::string& ns, const std::string& type,
                               const std::string& id) const {
    if (std::find(opts_.namespaces.begin(), opts_.namespaces.end(), ns) == opts_.namespaces.end()) {
      return Status::not_found("unknown namespace " + quote_for_message(ns));
    }
    if (std::string why = check_id(id); !why.empty()) {
      return Status::invalid("invalid actor id " + quote_for_message(id) + ": " + why);
    }
    if (std::string why = registry_.refusal(ns, type); !why.empty()) return Status::unavailable(why);
    {
      std::shared_lock lock(bind_mu_);
      auto it = bindings_.find(ns + '\x1f' + type);
      if (it != bindings_.end()) return it->second.get();
    }
    auto plugin = registry_.plugin_for_type(type, ns);
    if (!plugin || plugin->find_type(type) == nullptr) {
      return Status::not_found("unknown actor type " + quote_for_message(type));
    }
    std::unique_lock lock(bind_mu_);
    auto& slot = bindings_[ns + '\x1f' + type];
    if (!slot) {
      auto b = std::make_unique<TypeBinding>();
      b->ns = ns;
      b->type = type;
      b->plugin = plugin;
      b->actor_type = plugin->find_type(type);
      b->snapshot = opts_.snapshot;
      b->idle_timeout_ms = opts_.idle_timeout_ms;
      b->mailbox_capacity = opts_.mailbox_capacity;
      b->call_timeout_ms = opts_.call_timeout_ms;
      b->call_timeout_key = "actors.call_timeout";
      if (auto o = opts_.types.find(type); o != opts_.types.end()) {
        if (o->second.snapshot) b->snapshot = *o->second.snapshot;
        if (o->second.idle_timeout_ms) b->idle_timeout_ms = *o->second.idle_timeout_ms;
        if (o->second.mailbox_capacity) b->mailbox_capacity = *o->second.mailbox_capacity;
        if (o->second.call_timeout_ms) {
          b->call_timeout_ms = *o->second.call_timeout_ms;
          b->call_timeout_key = "actors.types." + type + ".call_timeout";
        }
      }
      slot = std::move(b);
    }
    return slot.get();
  }

  static Status check_payload(const std::string& payload) {
    const size_t first = payload.find_first_not_of(" \t\r\n");
    if (first == std::string::npos || payload[first] != '{') {
      return Status::invalid("command payload must be a JSON object");
    }
    if (Status s = check_json_text(payload, kMaxPluginJsonDepth, "command payload"); !s) return s;
    if (!nlohmann::json::accept(payload)) {
      // Let the parser say where.
      try {
        auto parsed = nlohmann::json::parse(payload);
        (void)parsed;
      } catch (const nlohmann::json::exception& e) {
        return Status::invalid(std::string("malformed JSON in command payload: ") + e.what());
      }
      return Status::invalid("malformed JSON in command payload");
    }
    return Status::ok();
  }

  // --- mailboxes ------------------------------------------------------------

  Shard& shard_of(const TypeBinding* b, const std::string& id) {
    return shards_[ActorMapKeyHash{}(ActorMapKey{b, id}) % kShards];
  }

  void enqueue(TypeBinding* b, Task* t) {
    if (stopping_.load()) {
      return fail_task(t, Status::unavailable("the host is shutting down"));
    }
    const std::string& id = t->command.id;
    Shard& s = shard_of(b, id);
    Actor* a = nullptr;
    bool schedule = false;
    {
      std::lock_guard lock(s.mu);
      auto [it, inserted] = s.actors.try_emplace(ActorMapKey{b, id});
      a = &it->second;
      if (inserted) {
        a->key = &it->first;
        a->last_used_ms = opts_.clock->mono_ms();
      }
      if (a->queued >= b->mailbox_capacity) {
        a = nullptr;
      } else {
        lru_touch(s, a);
        if (a->tail != nullptr) a->tail->next = t; else a->head = t;
        a->tail = t;
        ++a->queued;
        in_flight_.fetch_add(1);
        if (a->phase == Phase::kIdle && !b->paused.load()) {
          a->phase = Phase::kScheduled;
          schedule = true;
        }
      }
    }
    if (a == nullptr) {
      return fail_task(t, Status::unavailable("mailbox of actor " + b->ns + "/" + b->type + "/" + id +
                                              " is full (" + std::to_string(b->mailbox_capacity) +
                                              " commands waiting)"));
    }
    if (schedule) pool_.post([this, a] { drive(a); });
  }

  // Puts a task back at the head of the mailbox (conflict retry).
  void requeue_front(Actor* a, Task* t) {
    Shard& s = shard_of(a->key->binding, a->key->id);
    std::lock_guard lock(s.mu);
    t->next = a->head;
    a->head = t;
    if (a->tail == nullptr) a->tail = t;
    ++a->queued;
  }

  // Takes the next task, or marks the actor idle when there is none.
  Task* take(Actor* a) {
    Shard& s = shard_of(a->key->binding, a->key->id);
    std::lock_guard lock(s.mu);
    Task* t = a->head;
    if (t == nullptr || a->key->binding->paused.load()) {
      // Idle, or parked by a hot swap with its tasks kept for the resume.
      a->phase = Phase::kIdle;
      a->last_used_ms = opts_.clock->mono_ms();
      // Not kept without a state (a read of an actor with no events, a
      // failed load): an entry per id asked for would grow without bound.
      if (a->state == nullptr && evictable(*a)) erase(s, a);
      return nullptr;
    }
    a->head = t->next;
    if (a->head == nullptr) a->tail = nullptr;
    t->next = nullptr;
    --a->queued;
    a->phase = Phase::kRunning;
    return t;
  }

  void drive(Actor* a) {
    while (Task* t = take(a)) {
      if (!run(a, t)) return;  // went to the store; on_committed continues
    }
  }

  // --- the pipeline ---------------------------------------------------------

  // Hands a task that needs a round trip to the store to an I/O thread, which
  // then runs this actor's mailbox on; the workers go on with other actors.
  // Returns false, as run() does for a task that went to the store.
  bool run_on_io(Actor* a, Task* t) {
    io_pool_->post([this, a, t] {
      on_io_thread = true;
      if (run(a, t)) drive(a);
      on_io_thread = false;
    });
    return false;
  }

  // Runs one task. Returns false when the task is waiting for the store, or
  // when the watchdog gave up its plugin call (given_up: `a` is not ours).
  bool run(Actor* a, Task* t) {
    if (auto done = prepare(a, t)) return *done;
    if (t->query) return answer_query(a, t);
    const TypeBinding& b = *a->key->binding;
    const ActorKey key{b.ns, b.type, a->key->id};
    if (!admit_command(a, t, key)) return true;
    return decide_and_append(a, t, key);
  }

  // Resolves the task's binding and command and activates the actor. Returns
  // what run() returns when the task cannot go on here (answered, handed to
  // an I/O thread, or given up), nullopt when the actor is ready for it.
  std::optional<bool> prepare(Actor* a, Task* t) {
    given_up = false;
    const TypeBinding& b = *a->key->binding;
    if (b.actor_type == nullptr) {
      finish(t, b, error_result(Status::not_found("actor type " + b.type +
                                                  " is no longer served (its plugin was reloaded "
                                                  "without it)")));
      return true;
    }
    if (Status s = callable(b, a->key->id); !s) {
      finish(t, b, error_result(std::move(s)));
      return true;
    }
    const ActorType& type = *b.actor_type;
    const bool guess_new = io_pool_ && may_assume_new(a, t);
    const bool lookup = a->state == nullptr || (t->query && t->reload) ||
                        (!t->query && !t->command.idempotency_key.empty());
    if (lookup && io_pool_ && !on_io_thread && !guess_new) return run_on_io(a, t);
    if (!t->query) {
      // Resolved here, not at send(): a hot swap may change the model between.
      const int index = type.command_index(t->command.name);
      if (index < 0) {
        finish(t, b, error_result(Status::not_found(rules::unknown_command(t->command.name, b.type))));
        return true;
      }
      t->command_index = static_cast<uint32_t>(index);
    }
    if (t->query && t->reload && a->state != nullptr) deactivate(a);
    if (a->state == nullptr) {
      Status s = guess_new ? activate_as_new(a) : activate(a, t);
      if (given_up) return false;
      if (!s) {
        finish(t, b, error_result(s));
        return true;
      }
    }
    return std::nullopt;
  }

  // The idempotency key and the expected version: false when the command
  // was answered by them.
  bool admit_command(Actor* a, Task* t, const ActorKey& key) {
    const TypeBinding& b = *a->key->binding;
    const Command& c = t->command;
    if (!c.idempotency_key.empty()) {
      auto seen = check_key(a->keys.get(), events_, key, c.idempotency_key, t->digest, opts_.idempotency,
                            opts_.clock->wall_ms());
      if (!seen) {
        finish(t, b, error_result(seen.status()));
        return false;
      }
      if (seen->outcome != KeyCheck::Outcome::kNew) {
        finish(t, b, keyed_result(key, c.idempotency_key, t->digest, seen->first));
        return false;
      }
    }
    if (c.expected_version && *c.expected_version != a->version) {
      finish(t, b, conflict_result(key, *c.expected_version, a->version));
      return false;
    }
    return true;
  }

  // Calls decide and hands its events to the store (false: the task waits
  // for the commit), or answers what decide answered without events.
  bool decide_and_append(Actor* a, Task* t, const ActorKey& key) {
    const TypeBinding& b = *a->key->binding;
    const ActorType& type = *b.actor_type;
    Command& c = t->command;
    // What the call reads is read before it: once given up, the actor is no
    // longer this thread's (the id is the task's, which outlives the call).
    Decision d;
    void* const state = a->state;
    const uint64_t version = a->version;
    if (!watched({t, a, state, "decide"},
                 [&] { d = type.decide(state, t->command_index, c.payload, c.id, version); })) {
      return false;
    }
    if (a->assumed_new && (!d.status || d.events.empty())) {
      // Only a commit confirms the guess: an answer without one needs the
      // actor as the store has it.
      deactivate(a);
      t->confirm = true;
      return run_on_io(a, t);
    }
    if (!d.status) {
      CommandResult r;
      r.status = std::move(d.status);
      r.reject_code = std::move(d.reject_code);
      r.version = a->version;
      finish(t, b, std::move(r));
      return true;
    }
    if (d.events.empty()) {
      CommandResult r;
      r.version = a->version;
      finish(t, b, std::move(r));
      return true;
    }
    AppendRequest& req = t->append;
    req.key = key;
    req.expected_version = a->version;
    req.idempotency_key = c.idempotency_key;
    req.command_digest = t->digest;
    req.timestamp_ms = opts_.clock->wall_ms();
    req.events.clear();
    req.events.reserve(d.events.size());
    for (auto& e : d.events) req.events.push_back({type.events()[e.index], std::move(e.payload)});
    set_phase(a, Phase::kCommitting);
    events_.append(req, [this, a, t](AppendResult r) {
      pool_.post([this, a, t, r = std::move(r)]() mutable {
        if (on_committed(a, t, t->append, std::move(r))) drive(a);
      });
    });
    return false;
  }

  // Answers a state query of an actor that run() has activated. Returns
  // false iff its view call was given up.
  bool answer_query(Actor* a, Task* t) {
    const TypeBinding& b = *a->key->binding;
    Result<ActorView> r = no_events(b, a->key->id);
    if (a->version > 0) {
      Result<std::string> v = std::string();
      void* const state = a->state;
      if (!watched({t, a, state, "view"}, [&] { v = b.actor_type->view(state); })) return false;
      r = v ? Result<ActorView>(ActorView{a->version, std::move(v).value()})
            : Result<ActorView>(v.status());
    } else {
      deactivate(a);  // a read does not keep an actor without events
    }
    t->query_done(std::move(r));
    done_task(t);
    return true;
  }

  static Status no_events(const TypeBinding& b, const std::string& id) {
    return Status::not_found("actor " + b.ns + "/" + b.type + "/" + id + " has no events");
  }

  // Returns false iff a plugin call was given up (the thread then leaves
  // `a` and `t` alone).
  bool on_committed(Actor* a, Task* t, AppendRequest& req, AppendResult r) {
    given_up = false;
    const TypeBinding& b = *a->key->binding;
    const bool guessed = a->assumed_new;
    a->assumed_new = false;
    if (r.status.code() == StatusCode::kConflict && guessed && !t->command.expected_version) {
      // The actor was not new after all: load it and decide again (not a
      // conflict with another writer, and no retry spent). The store has
      // just looked up its version: the load need not ask again.
      deactivate(a);
      t->confirm = true;
      t->known_latest = r.current_version;
      requeue_front(a, t);
      return true;
    }
    if (r.status.code() == StatusCode::kConflict) {
      conflicts_.fetch_add(1);
      // Someone else wrote: our state is stale. Reload and decide again,
      // unless the caller pinned a version.
      deactivate(a);
      if (!t->command.expected_version && t->retries < opts_.conflict_retries) {
        ++t->retries;
        requeue_front(a, t);
        return true;
      }
      finish(t, b, conflict_result(req.key, req.expected_version, r.current_version));
      return true;
    }
    if (!r.status) {
      if (guessed) deactivate(a);  // unconfirmed: the next command starts over
      finish(t, b, error_result(r.status));
      return true;
    }
    if (r.duplicate) {
      // The store knew the key: a commit this actor did not know of.
      deactivate(a);
      finish(t, b, keyed_result(req.key, req.idempotency_key, t->digest,
                                {r.first_version, r.version, r.duplicate_digest}));
      return true;
    }
    if (guessed) {
      // The store had no events of this actor: it was new, as assumed.
      activations_.fetch_add(1);
      last_replay_length_.store(0);
      if (observer_) observer_->on_activation(b.type, 0, false);
    }
    return apply_committed(a, t, req, r);
  }

  // Applies a stored commit to the actor's state and replies (the store has
  // made the commit visible on its events subject).
  // Returns false iff an apply or snapshot call was given up.
  bool apply_committed(Actor* a, Task* t, AppendRequest& req, const AppendResult& r) {
    const TypeBinding& b = *a->key->binding;
    const ActorType& type = *b.actor_type;
    CommandResult out;
    out.version = r.version;
    out.events.reserve(req.events.size());
    uint64_t v = r.first_version;
    for (auto& e : req.events) {
      out.events.push_back({v++, std::move(e.type), std::move(e.payload), req.timestamp_ms});
    }
    events_appended_.fetch_add(out.events.size());
    if (observer_) observer_->on_events_appended(b.type, out.events.size());
    for (const StoredEvent& e : out.events) {
      const auto idx = static_cast<uint32_t>(type.event_index(e.type));
      Status s;
      void* const state = a->state;
      // Given up: the events are stored, so the reply (by the watchdog) is `out`.
      if (!watched({t, a, state, "apply", &out}, [&] { s = type.apply(state, idx, e.payload, e.version); })) {
        return false;
      }
      if (!s) {
        // The events are stored; the plugin could not apply its own event.
        // Drop the state so the next activation replays (and reports it).
        log::error("actor " + req.key.to_string() + ": " + s.message() +
                   "; the actor is passivated and will replay on its next command");
        deactivate(a);
        break;
      }
      a->version = e.version;
    }
    if (!req.idempotency_key.empty() && a->state != nullptr) {
      StoredEvent& last = out.events.back();
      last.idempotency_key = req.idempotency_key;
      last.command_digest = req.command_digest;
      last.commit_first_version = r.first_version;
      remember_key(a->keys, last, opts_.idempotency, opts_.clock->wall_ms());
    }
    finish(t, b, std::move(out));
    if (a->state != nullptr) maybe_snapshot(a, nullptr);
    return !given_up;
  }

  // Whether a command may run on a guess that the actor is new, without a
  // round trip to the store first. The guess is checked by the commit itself
  // (the store's version check of version 0); a command without a commit, or
  // a failed check, loads the actor and runs again. Not when the store may
  // have dropped events (its version check of 0 would then pass for an actor
  // with a snapshot), nor for keyed commands (their lookup is a round trip
  // anyway), queries, or a command pinned to another version.
  bool may_assume_new(const Actor* a, const Task* t) const {
    return a->state == nullptr && !t->query && !t->confirm && t->retries == 0 &&
           t->command.idempotency_key.empty() && !events_.may_drop_events() &&
           (!t->command.expected_version || *t->command.expected_version == 0);
  }

  Status activate_as_new(Actor* a) {
    auto created = a->key->binding->actor_type->create();
    if (!created) return created.status();
    a->state = *created;
    a->version = 0;
    a->snapshot_version = 0;
    a->assumed_new = true;
    active_actors_.fetch_add(1);
    note_activated(a);
    return Status::ok();
  }

  // Loads the latest usable snapshot and replays the events after it, for
  // task `t`. `t->known_latest` > 0: the actor's version as the store has
  // just reported it, so it is not asked again (if it moved since, the next
  // commit's version check says so). A query of an actor without events
  // loads nothing (kNotFound). After a plugin call was given up (given_up),
  // the return value means nothing and nothing may be touched.
  Status activate(Actor* a, Task* t) {
    const TypeBinding& b = *a->key->binding;
    const ActorType& type = *b.actor_type;
    const ActorKey key{b.ns, b.type, a->key->id};
    // The stream's version first: an actor without events (a new one) needs
    // neither a snapshot lookup nor a read, unless the store may have dropped
    // events that a snapshot still holds.
    auto latest = t->known_latest > 0 ? Result<uint64_t>(t->known_latest) : events_.latest_version(key);
    if (!latest) return latest.status();
    if (t->query && *latest == 0 && !events_.may_drop_events()) return no_events(b, key.id);
    auto created = type.create();
    if (!created) return created.status();
    void* state = *created;
    uint64_t version = 0;
    bool from_snapshot = false;
    // A snapshot only shortens a replay: not looked up when the store holds
    // every event at hand (a young actor whose history is its last commit).
    Result<std::optional<Snapshot>> snap = std::optional<Snapshot>();
    if ((*latest > 0 && !events_.at_hand(key, 1, *latest)) || events_.may_drop_events()) {
      snap = snapshots_.latest(key);
    }
    if (!snap) {
      type.destroy(state);
      return snap.status();
    }
    // The keys of the actor's recent keyed commits: from the snapshot's host
    // record, then from the events replayed after it.
    std::unique_ptr<IdempotencyWindow> keys;
    if (snap->has_value()) {
      const Snapshot& s = **snap;
      auto window = window_from_snapshot(s);
      if (!window) {
        log::warn("actor " + key.to_string() + ": snapshot v" + std::to_string(s.version) + ": " +
                  window.status().message() + "; replaying events instead");
      }
      const bool restored = window && use_snapshot({t, a, state, "restore"}, key, type, s);
      if (given_up) return Status::ok();
      if (restored) {
        version = s.version;
        from_snapshot = true;
        keys = std::move(window).value();
      } else {
        // restore may have left the state half-written: start clean.
        type.destroy(state);
        created = type.create();
        if (!created) return created.status();
        state = *created;
      }
    }
    uint64_t replayed = 0;
    Status rs = Status::ok();
    if (*latest > version || events_.may_drop_events()) {
      rs = replay({t, a, state, "apply"}, key, type, *latest, version, replayed, keys);
    }
    if (given_up) return Status::ok();
    if (!rs) {
      type.destroy(state);
      log::error(rs.message());
      return rs;
    }
    a->state = state;
    a->version = version;
    a->snapshot_version = from_snapshot ? (*snap)->version : 0;
    a->keys = std::move(keys);
    activations_.fetch_add(1);
    events_replayed_.fetch_add(replayed);
    last_replay_length_.store(replayed);
    active_actors_.fetch_add(1);
    if (observer_) observer_->on_activation(b.type, replayed, from_snapshot);
    note_activated(a);
    // A long replay is worth a snapshot now, so the next activation is short.
    if (b.snapshot.every > 0 && replayed >= b.snapshot.every) maybe_snapshot(a, t);
    return Status::ok();
  }

  // Applies the stored events after `version` up to `latest` to the state
  // being loaded (site.state), advancing `version` and counting `replayed`.
  // The keys of keyed commits replayed are added to `keys`.
  Status replay(const CallSite& site, const ActorKey& key, const ActorType& type, uint64_t latest,
                uint64_t& version, uint64_t& replayed, std::unique_ptr<IdempotencyWindow>& keys) {
    const int64_t now_ms = opts_.clock->wall_ms();
    return events_.read_known(key, version + 1, latest, [&](const StoredEvent& e) {
      if (given_up) return Status::unavailable("the replay was given up");
      const int idx = type.event_index(e.type);
      if (idx < 0) {
        return Status::corruption("actor " + key.to_string() + ", event at version " +
                                  std::to_string(e.version) + ": event type " +
                                  quote_for_message(e.type) + " is not in the model of " +
                                  type.name() + " (plugin " + type.plugin().name() + " " +
                                  type.plugin().version() + ")");
      }
      Status s;
      if (!watched(site, [&] { s = type.apply(site.state, static_cast<uint32_t>(idx), e.payload, e.version); })) {
        return Status::unavailable("the replay was given up");
      }
      if (!s) {
        return Status(StatusCode::kCorruption, "actor " + key.to_string() +
                                                   ", replay at version " +
                                                   std::to_string(e.version) + ": " + s.message());
      }
      if (replayed == 0 && e.version != version + 1) {
        // The stream dropped older events (its limits): their keys are gone.
        if (!keys) keys = std::make_unique<IdempotencyWindow>();
        keys->mark_incomplete();
      }
      remember_key(keys, e, opts_.idempotency, now_ms);
      version = e.version;
      ++replayed;
      return Status::ok();
    });
  }

  // Restores the state being loaded (site.state) from snapshot `s`, through
  // upgrade_state when its schema is older. False (logged) when it cannot.
  bool use_snapshot(const CallSite& site, const ActorKey& key, const ActorType& type,
                    const Snapshot& s) {
    if (s.plugin != type.plugin().name()) {
      log::warn("actor " + key.to_string() + ": snapshot v" + std::to_string(s.version) +
                " was written by plugin " + s.plugin + ", not " + type.plugin().name() +
                "; replaying events instead");
      return false;
    }
    std::string upgraded;
    const std::string* bytes = &s.bytes;
    if (s.schema_version != type.schema_version()) {
      if (!type.has_upgrade()) {
        log::info("actor " + key.to_string() + ": snapshot v" + std::to_string(s.version) +
                  " has state schema " + std::to_string(s.schema_version) + ", plugin has " +
                  std::to_string(type.schema_version()) + "; replaying events instead");
        return false;
      }
      Result<std::string> up = std::string();
      CallSite upgrade_site = site;
      upgrade_site.hook = "upgrade_state";
      if (!watched(upgrade_site, [&] { up = type.upgrade(s.schema_version, s.bytes); })) return false;
      if (!up) {
        log::warn("actor " + key.to_string() + ": " + up.status().message() +
                  "; replaying events instead");
        return false;
      }
      upgraded = std::move(up).value();
      bytes = &upgraded;
    }
    Status r;
    if (!watched(site, [&] { r = type.restore(site.state, *bytes); })) return false;
    if (!r) {
      log::warn("actor " + key.to_string() + ": snapshot v" + std::to_string(s.version) + ": " +
                r.message() + "; replaying events instead");
      return false;
    }
    return true;
  }

  // Queues a snapshot of an active actor when its policy says so. `t`: the
  // task waiting on this worker, if any (answered if the call is given up).
  void maybe_snapshot(Actor* a, Task* t) {
    const TypeBinding& b = *a->key->binding;
    if (b.snapshot.every == 0 || a->version - a->snapshot_version < b.snapshot.every) return;
    Result<std::string> bytes = std::string();
    void* const state = a->state;
    if (!watched({t, a, state, "snapshot"}, [&] { bytes = b.actor_type->snapshot(state); })) return;
    auto job = snapshot_job(a, std::move(bytes));
    if (!job) return;
    {
      std::lock_guard lock(snap_mu_);
      if (snap_queue_.size() >= kMaxQueuedSnapshots) return;  // next policy tick retries
      snap_queue_.push_back(std::move(*job));
    }
    snap_cv_.notify_one();
  }

  // The snapshot of an active actor, ready to save; marks the actor as
  // snapshotted at its version. nullopt (logged) when the plugin fails.
  std::optional<SnapshotJob> snapshot_job(Actor* a) {
    return snapshot_job(a, a->key->binding->actor_type->snapshot(a->state));
  }
  std::optional<SnapshotJob> snapshot_job(Actor* a, Result<std::string> bytes) {
    const TypeBinding& b = *a->key->binding;
    if (!bytes) {
      log::warn("actor " + b.ns + "/" + b.type + "/" + a->key->id + ": " + bytes.status().message());
      return std::nullopt;
    }
    a->snapshot_version = a->version;
    return SnapshotJob{ActorKey{b.ns, b.type, a->key->id},
                       Snapshot{a->version, b.plugin->name(), b.actor_type->schema_version(),
                                std::move(bytes).value(), opts_.clock->wall_ms(), snapshot_record(a->keys.get())},
                       b.snapshot.keep, b.type};
  }

  void save_snapshot(const SnapshotJob& job) {
    if (Status s = snapshots_.save(job.key, job.snapshot, job.keep); !s) {
      log::warn("snapshot of " + job.key.to_string() + " v" + std::to_string(job.snapshot.version) +
                " not saved: " + s.message());
    } else {
      snapshots_taken_.fetch_add(1);
      if (observer_) observer_->on_snapshot(job.type);
    }
  }

  void snapshot_loop() {
    std::unique_lock lock(snap_mu_);
    for (;;) {
      snap_cv_.wait(lock, [&] { return stopped_flag() || !snap_queue_.empty(); });
      if (snap_queue_.empty()) return;
      SnapshotJob job = std::move(snap_queue_.front());
      snap_queue_.pop_front();
      lock.unlock();
      {
        std::lock_guard saving(snap_save_mu_);  // a repair waits for a save in progress
        save_snapshot(job);
      }
      lock.lock();
    }
  }

  // --- plugin calls under the watchdog ---------------------------------------

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

  // Whether the actor's plugin may be called: not when the actor is
  // quarantined, nor when its plugin has too many given-up calls running.
  Status callable(const TypeBinding& b, const std::string& id) const {
    if (std::string why = b.quarantine.reason(id); !why.empty()) {
      return Status(StatusCode::kPluginTimeout, why);
    }
    const uint32_t stuck = watchdog_.stuck(b.plugin.get());
    if (stuck < opts_.max_stuck_calls) return Status::ok();
    return Status(StatusCode::kPluginTimeout,
                  "plugin " + b.plugin->name() + " has " + std::to_string(stuck) +
                      " calls that passed their time limit and have not returned "
                      "(actors.max_stuck_calls: " + std::to_string(opts_.max_stuck_calls) +
                      "); its calls are refused until they return or the plugin is reloaded");
  }

  static std::string format_ms(int64_t ms) {
    return ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
  }

  // The watchdog gave up a plugin call (its thread is still inside): answers
  // for it, quarantines the actor, fails the commands queued behind it and
  // frees the actor for other workers. The state the call uses stays with
  // the call and is destroyed when it returns (with the task), by the
  // returned Release; the plugin image is kept loaded until then.
  Watchdog::Release call_timed_out(const CallSite& site) {
    Actor* a = site.actor;
    const TypeBinding& b = *a->key->binding;
    const std::string id = a->key->id;
    std::shared_ptr<const Plugin> plugin;
    const ActorType* type = nullptr;
    {
      std::shared_lock lock(bind_mu_);
      plugin = b.plugin;
      type = b.actor_type;
    }
    const std::string reason = b.type + "." + site.hook + " took longer than " +
                               format_ms(b.call_timeout_ms) + " (" + b.call_timeout_key +
                               "); actor " + b.ns + "/" + b.type + "/" + id +
                               " is quarantined until plugin " + plugin->name() + " is reloaded";
    log::error(reason);
    b.quarantine.add(id, reason);
    Task* queued = nullptr;
    {
      Shard& s = shard_of(&b, id);
      std::lock_guard lock(s.mu);
      if (a->state != nullptr && a->state == site.state) {
        a->state = nullptr;  // the call's now
        a->version = 0;
        a->snapshot_version = 0;
        a->assumed_new = false;
        --s.active;
        active_actors_.fetch_sub(1);
      }
      queued = a->head;
      a->head = a->tail = nullptr;
      a->queued = 0;
      a->phase = Phase::kIdle;
      a->last_used_ms = opts_.clock->mono_ms();
      if (a->state == nullptr && evictable(*a)) erase(s, a);
    }
    const Status why(StatusCode::kPluginTimeout, reason);
    if (site.task != nullptr) answer(site.task, b, site.committed ? *site.committed : error_result(why));
    while (queued != nullptr) {
      Task* next = queued->next;
      finish(queued, b, error_result(why));
      queued = next;
    }
    return [plugin, type, state = site.state, task = site.task] {
      if (state != nullptr) type->destroy(state);
      delete task;
    };
  }

  // --- results --------------------------------------------------------------

  static CommandResult error_result(Status s) {
    CommandResult r;
    r.status = std::move(s);
    return r;
  }

  static CommandResult conflict_result(const ActorKey& key, uint64_t attempted, uint64_t current) {
    CommandResult r;
    r.status = version_conflict(key, attempted, current);
    r.attempted_version = attempted;
    r.current_version = current;
    return r;
  }

  // The answer to a command whose key was used before: the first result,
  // or 422 when that was another command.
  CommandResult keyed_result(const ActorKey& key, const std::string& idempotency_key, const std::string& digest,
                             const IdempotentCommit& first) {
    if (digests_match(first.digest, digest)) return duplicate_result(key, first);
    CommandResult r;
    r.status = key_reused(key, idempotency_key, first);
    r.reject_code = kIdempotencyKeyReused;
    return r;
  }

  CommandResult duplicate_result(const ActorKey& key, const IdempotentCommit& c) {
    CommandResult r;
    r.duplicate = true;
    r.version = c.last_version;
    auto ev = events_.read_all(key, c.first_version, c.last_version - c.first_version + 1);
    if (!ev) return error_result(ev.status());
    r.events = std::move(ev).value();
    return r;
  }

  void finish(Task* t, const TypeBinding& b, CommandResult r) {
    answer(t, b, std::move(r));
    delete t;
  }

  // Replies for `t` and counts it done, leaving `t` itself alone.
  void answer(Task* t, const TypeBinding& b, CommandResult r) {
    if (t->query) {
      t->query_done(r.status);
      task_done();
      return;
    }
    const char* outcome = "ok";
    if (r.status.is_ok()) {
      commands_ok_.fetch_add(1);
    } else if (r.status.code() == StatusCode::kRejected) {
      commands_rejected_.fetch_add(1);
      outcome = "rejected";
    } else {
      commands_failed_.fetch_add(1);
      outcome = status_code_name(r.status.code());
    }
    if (observer_) {
      observer_->on_command(
          b.type, outcome,
          std::chrono::duration<double>(SteadyClock::now() - t->start).count());
    }
    t->done(std::move(r));
    task_done();
  }

  void finish_early(const std::string& type, CommandCallback done, Status s,
                    SteadyClock::time_point start) {
    commands_failed_.fetch_add(1);
    if (observer_) {
      observer_->on_command(type, status_code_name(s.code()),
                            std::chrono::duration<double>(SteadyClock::now() - start).count());
    }
    done(error_result(std::move(s)));
  }

  void fail_task(Task* t, Status s) {
    if (t->query) {
      t->query_done(std::move(s));
      delete t;
      return;
    }
    const std::string type = t->command.type;
    finish_early(type, std::move(t->done), std::move(s), t->start);
    delete t;
  }

  void done_task(Task* t) {
    delete t;
    task_done();
  }

  void task_done() {
    if (in_flight_.fetch_sub(1) == 1 && stopping_.load()) {
      std::lock_guard lock(stop_mu_);
      stop_cv_.notify_all();
    }
  }

  // --- activation bookkeeping, passivation ----------------------------------

  void set_phase(Actor* a, Phase p) {
    Shard& s = shard_of(a->key->binding, a->key->id);
    std::lock_guard lock(s.mu);
    a->phase = p;
  }

  // Releases the state of an actor this worker runs.
  void deactivate(Actor* a) {
    if (a->state == nullptr) return;
    a->key->binding->actor_type->destroy(a->state);
    Shard& s = shard_of(a->key->binding, a->key->id);
    std::lock_guard lock(s.mu);
    a->state = nullptr;
    a->version = 0;
    a->snapshot_version = 0;
    a->assumed_new = false;
    a->keys.reset();
    --s.active;
    active_actors_.fetch_sub(1);
  }

  // Counts a new activation and evicts least recently used idle actors of
  // the shard beyond its share of max_active_actors.
  void note_activated(Actor* self) {
    Shard& s = shard_of(self->key->binding, self->key->id);
    std::lock_guard lock(s.mu);
    ++s.active;
    for (Actor* a = s.lru_tail; a != nullptr && s.active > per_shard_max_;) {
      Actor* prev = a->lru_prev;
      if (a != self && evictable(*a) && a->state != nullptr) erase(s, a);
      a = prev;
    }
  }

  static bool evictable(const Actor& a) {
    return a.phase == Phase::kIdle && a.head == nullptr && !a.key->binding->paused.load();
  }

  // REQUIRES: s.mu held, evictable(*a).
  void erase(Shard& s, Actor* a) {
    if (a->state != nullptr) {
      a->key->binding->actor_type->destroy(a->state);
      --s.active;
      active_actors_.fetch_sub(1);
      passivations_.fetch_add(1);
    }
    lru_unlink(s, a);
    const ActorMapKey key = *a->key;
    s.actors.erase(key);
  }

  template <class Pred>
  void sweep(Shard& s, Pred&& pred) {
    for (Actor* a = s.lru_tail; a != nullptr;) {
      Actor* prev = a->lru_prev;
      if (evictable(*a) && pred(*a)) erase(s, a);
      a = prev;
    }
  }

  void lru_unlink(Shard& s, Actor* a) {
    if (a->lru_prev) a->lru_prev->lru_next = a->lru_next; else if (s.lru_head == a) s.lru_head = a->lru_next;
    if (a->lru_next) a->lru_next->lru_prev = a->lru_prev; else if (s.lru_tail == a) s.lru_tail = a->lru_prev;
    a->lru_prev = a->lru_next = nullptr;
  }

  void lru_touch(Shard& s, Actor* a) {
    if (s.lru_head == a) return;
    lru_unlink(s, a);
    a->lru_next = s.lru_head;
    if (s.lru_head) s.lru_head->lru_prev = a;
    s.lru_head = a;
    if (s.lru_tail == nullptr) s.lru_tail = a;
  }

  bool stopped_flag() {
    return stopped_.load();
  }

  void janitor_loop() {
    std::unique_lock lock(stop_mu_);
    for (;;) {
      const int64_t interval = opts_.idle_timeout_ms > 0
                                   ? std::clamp<int64_t>(opts_.idle_timeout_ms / 4, 10, 1000)
                                   : 1000;
      stop_cv_.wait_for(lock, std::chrono::milliseconds(interval), [&] { return stopped_.load(); });
      if (stopped_.load()) return;
      lock.unlock();
      const int64_t now = opts_.clock->mono_ms();
      for (Shard& s : shards_) {
        std::lock_guard sl(s.mu);
        sweep(s, [&](const Actor& a) {
          const int64_t timeout = a.key->binding->idle_timeout_ms;
          return timeout > 0 && now - a.last_used_ms >= timeout;
        });
      }
      lock.lock();
    }
  }

  static constexpr size_t kMaxQueuedSnapshots = 10000;

  RuntimeOptions opts_;
  PluginRegistry& registry_;
  EventStore& events_;
  SnapshotStore& snapshots_;
  RuntimeObserver* observer_;

  std::mutex swap_mu_;  // one hot swap at a time
  mutable std::shared_mutex bind_mu_;
  mutable std::unordered_map<std::string, std::unique_ptr<TypeBinding>> bindings_;

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
      events_replayed_{0}, last_replay_length_{0}, passivations_{0}, active_actors_{0};

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

thread_local bool RuntimeImpl::on_io_thread = false;
thread_local bool RuntimeImpl::given_up = false;

}  // namespace

Result<std::unique_ptr<Runtime>> Runtime::create(RuntimeOptions options, PluginRegistry& registry,
                                                 EventStore& events, SnapshotStore& snapshots,
                                                 RuntimeObserver* observer) {
  if (options.namespaces.empty()) return Status::invalid("runtime: no namespace configured");
  for (const auto& ns : options.namespaces) {
    if (std::string why = check_name(ns); !why.empty()) {
      return Status::invalid("runtime: namespace " + quote_for_message(ns) + " " + why);
    }
  }
  if (options.mailbox_capacity == 0) return Status::invalid("runtime: mailbox capacity must be >= 1");
  return std::unique_ptr<Runtime>(
      new RuntimeImpl(std::move(options), registry, events, snapshots, observer));
}

}  // namespace aether
