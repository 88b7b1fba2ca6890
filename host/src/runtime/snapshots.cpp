// Snapshots: the policy that asks for one, and the thread that saves them.
#include "runtime/runtime_impl.hpp"

#include "core/log.hpp"
#include "runtime/idempotency.hpp"

namespace aether::runtime_detail {

// Queues a snapshot of an active actor when its policy says so. `t`: the
// task waiting on this worker, if any (answered if the call is given up).
void RuntimeImpl::maybe_snapshot(Actor* a, Task* t) {
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
std::optional<SnapshotJob> RuntimeImpl::snapshot_job(Actor* a) {
  return snapshot_job(a, a->key->binding->actor_type->snapshot(a->state));
}

std::optional<SnapshotJob> RuntimeImpl::snapshot_job(Actor* a, Result<std::string> bytes) {
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

void RuntimeImpl::save_snapshot(const SnapshotJob& job) {
  if (Status s = journal_.save_snapshot(job.key, job.snapshot, job.keep); !s) {
    log::warn("snapshot of " + job.key.to_string() + " v" + std::to_string(job.snapshot.version) +
              " not saved: " + s.message());
  } else {
    snapshots_taken_.fetch_add(1);
    if (observer_) observer_->on_snapshot(job.type);
  }
}

void RuntimeImpl::snapshot_loop() {
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

}  // namespace aether::runtime_detail
