// Repair: truncates an actor's history in the stores, with the actor paused
// and its state dropped.
#include "runtime/runtime_impl.hpp"

#include <chrono>

#include "core/log.hpp"

namespace aether::runtime_detail {

Result<RepairReport> RuntimeImpl::repair(const ActorKey& key, uint64_t truncate_after, bool dry_run) {
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

// Repair: the stores' part (snapshots first: without them the actor
// replays from its events, which is always right).
Result<RepairReport> RuntimeImpl::truncate_stores(const ActorKey& key, uint64_t version, bool dry_run) {
  uint64_t snapshots = 0;
  if (!dry_run) {
    auto n = journal_.drop_snapshots_after(key, version, false);
    if (!n) return n.status();
    snapshots = *n;
  }
  auto t = journal_.truncate_after(key, version, dry_run);
  if (!t) return t.status();
  if (dry_run) {
    auto n = journal_.drop_snapshots_after(key, version, true);
    if (!n) return n.status();
    snapshots = *n;
  }
  return RepairReport{t->records, t->last_version, snapshots};
}

// Waits (bounded) until the actor of a paused type runs nothing.
bool RuntimeImpl::wait_actor_idle(TypeBinding& b, const std::string& id) {
  Shard& s = shard_of(&b, id);
  return wait_parked(SteadyClock::now() + std::chrono::seconds(10), [&] {
    std::lock_guard lock(s.mu);
    auto it = s.actors.find(ActorMapKey{&b, id});
    return it == s.actors.end() || it->second.phase == Phase::kIdle;
  });
}

// Drops the state of an idle actor of a paused type; its mailbox stays.
void RuntimeImpl::drop_actor_state(TypeBinding& b, const std::string& id) {
  Shard& s = shard_of(&b, id);
  std::lock_guard lock(s.mu);
  auto it = s.actors.find(ActorMapKey{&b, id});
  if (it == s.actors.end() || !it->second.loaded()) return;
  b.actor_type->destroy(it->second.drop_state());
  --s.active;
  active_actors_.fetch_sub(1);
  passivations_.fetch_add(1);
}

}  // namespace aether::runtime_detail
