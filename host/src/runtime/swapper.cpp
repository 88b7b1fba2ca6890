// The plugin swapper: pauses a plugin's types, moves their active actors'
// states to the new version, rebinds the types and resumes them.
#include "runtime/runtime_impl.hpp"

#include <algorithm>
#include <chrono>

#include "core/log.hpp"

namespace aether::runtime_detail {

// Whether `next` may replace `current` (same name loaded, ABI and model
// rules of the registry, nothing dropped unless breaking swaps are allowed).
Status RuntimeImpl::check_swap(const std::shared_ptr<const Plugin>& current, const Plugin& next,
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

// Called under the shard lock by whoever makes an actor idle: when its type
// is paused, wakes a swap or repair that waits for its actors to park.
void RuntimeImpl::parked_idle(const TypeBinding& b) {
  if (!b.paused.load()) return;
  {
    std::lock_guard lock(parked_mu_);
    ++parked_count_;
  }
  parked_cv_.notify_all();
}

// Waits until `settled()` holds (it takes shard locks itself), checking it
// again each time an actor of a paused type parks. False at the deadline.
bool RuntimeImpl::wait_parked(SteadyClock::time_point deadline, const std::function<bool()>& settled) {
  for (;;) {
    uint64_t seen = 0;
    {
      std::lock_guard lock(parked_mu_);
      seen = parked_count_;
    }
    if (settled()) return true;
    std::unique_lock lock(parked_mu_);
    if (!parked_cv_.wait_until(lock, deadline, [&] { return parked_count_ != seen; })) {
      lock.unlock();
      return settled();
    }
  }
}

// Waits (bounded) until no actor of a paused binding runs a command; then
// `actors` holds those of them with a state.
Status RuntimeImpl::wait_paused_idle(const Plugin& next, const SwapOptions& options, std::vector<Actor*>& actors) {
  const auto deadline = SteadyClock::now() + std::chrono::milliseconds(options.pause_timeout_ms);
  const bool idle = wait_parked(deadline, [&] {
    actors.clear();
    bool busy = false;
    for (Shard& s : shards_) {
      std::lock_guard lock(s.mu);
      for (auto& [key, a] : s.actors) {
        if (!key.binding->paused.load()) continue;
        if (a.phase != Phase::kIdle) busy = true;
        if (a.loaded()) actors.push_back(&a);
      }
    }
    return !busy;
  });
  if (idle) return Status::ok();
  return Status::unavailable("swap of plugin " + next.name() + " aborted: its actors did not "
                             "finish their commands within " +
                             std::to_string(options.pause_timeout_ms) + " ms");
}

// Builds each active actor's state with the new code into `fresh`, keeping
// the old one; on an error, what was built is destroyed again. Paused
// actors are touched by nobody else.
Status RuntimeImpl::migrate_all(const std::vector<Actor*>& actors, const Plugin& current, const Plugin& next,
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
void RuntimeImpl::install_swap(const std::vector<Actor*>& actors, const std::vector<void*>& fresh,
                               const std::vector<TypeBinding*>& affected,
                               const std::shared_ptr<const Plugin>& next, const SwapScope& scope) {
  for (size_t i = 0; i < actors.size(); ++i) {
    Actor* a = actors[i];
    a->key->binding->actor_type->destroy(a->state);
    a->state = fresh[i];
    if (fresh[i] == nullptr) {
      a->drop_state();  // its type is not in the new version
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

Result<SwapReport> RuntimeImpl::swap_plugin(std::shared_ptr<const Plugin> next,
                                            const SwapOptions& options) {
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
    std::unique_lock lock(bind_mu_);
    for (auto& [_, b] : bindings_) {
      if (b->plugin->name() == next->name() && b->plugin != next && scope.covers(b->ns)) {
        affected.push_back(b.get());
      }
    }
    swapping_ = {&scope, next->name(), {}};  // bindings created from now on wait
  }
  for (TypeBinding* b : affected) b->paused.store(true);
  // `serving`: the version the swap leaves in place (null: the one each
  // binding has).
  auto resume = [&](const std::shared_ptr<const Plugin>& serving) {
    std::vector<TypeBinding*> all = affected;
    for (TypeBinding* b : end_swap(serving)) all.push_back(b);
    for (TypeBinding* b : affected) b->paused.store(false);
    reschedule_parked(all);
  };
  std::vector<Actor*> actors;
  std::vector<void*> fresh;
  Status moved = wait_paused_idle(*next, options, actors);
  if (moved) moved = migrate_all(actors, *current, *next, report, fresh);
  if (!moved) {
    resume(nullptr);
    return moved;
  }
  install_swap(actors, fresh, affected, next, scope);
  if (Status s = scope.commit(registry_, next); !s) {
    // check_replace passed under the same swap lock; only a concurrent
    // load() could get here.
    log::error("swap of plugin " + next->name() + ": registry: " + s.message());
  }
  resume(next);
  report.pause_ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - started).count();
  log::info("plugin " + next->name() + " swapped " + report.from_version + " -> " + report.to_version + ": " +
            std::to_string(report.actors_migrated) + " active actors moved (" +
            std::to_string(report.via_snapshot) + " by snapshot, " + std::to_string(report.via_upgrade) +
            " by upgrade_state, " + std::to_string(report.via_replay) + " by replay) in " +
            std::to_string(report.pause_ms) + " ms");
  return report;
}

// The state of paused actor `a` rebuilt with the new code.
Result<void*> RuntimeImpl::migrate_state(Actor* a, const ActorType& ot, const ActorType& nt, SwapReport& report) {
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
  Status rs = journal_.read(ActorKey{b.ns, b.type, a->key->id}, 1, a->version,
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

// Ends the swap for resolve(): the bindings it created meanwhile (paused,
// none of their actors has run) are bound to `serving` and unpaused; the
// caller reschedules them.
std::vector<TypeBinding*> RuntimeImpl::end_swap(const std::shared_ptr<const Plugin>& serving) {
  std::unique_lock lock(bind_mu_);
  std::vector<TypeBinding*> late = std::move(swapping_.late);
  swapping_ = {};
  for (TypeBinding* b : late) {
    if (serving != nullptr) {  // as install_swap() rebinds the others
      b->plugin = serving;
      b->actor_type = serving->find_type(b->type);
    }
    b->paused.store(false);
  }
  return late;
}

// Schedules actors whose mailboxes filled while their type was paused.
void RuntimeImpl::reschedule_parked(const std::vector<TypeBinding*>& bindings) {
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

}  // namespace aether::runtime_detail
