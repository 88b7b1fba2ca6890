// The actor table: shards, mailboxes, the LRU order and passivation (the
// actors' limit, the idle timeout, release and remote commits).
#include "runtime/runtime_impl.hpp"

#include <algorithm>
#include <thread>

namespace aether::runtime_detail {

std::vector<ActorKey> RuntimeImpl::active_actors(const std::string& plugin, size_t limit) {
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
      if (!a.loaded() || std::find(mine.begin(), mine.end(), key.binding) == mine.end()) continue;
      out.push_back(ActorKey{key.binding->ns, key.binding->type, key.id});
    }
  }
  return out;
}

void RuntimeImpl::passivate_all() {
  for (Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    sweep(s, [](const Actor&) { return true; });
  }
}

size_t RuntimeImpl::release(const std::function<bool(const ActorKey&)>& which) {
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
          if (a->loaded() && b.snapshot.every > 0 && a->version > a->snapshot_version) {
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

void RuntimeImpl::note_remote_commit(const ActorKey& key, uint64_t version) {
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
  if (evictable(*a) && a->loaded() && a->version < version) erase(s, a);
}

void RuntimeImpl::enqueue(TypeBinding* b, Task* t) {
  if (stopping_.load()) {
    return fail_task(t, Status::unavailable("the host is shutting down"));
  }
  const std::string& id = t->id();
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
void RuntimeImpl::requeue_front(Actor* a, Task* t) {
  Shard& s = shard_of(a->key->binding, a->key->id);
  std::lock_guard lock(s.mu);
  t->next = a->head;
  a->head = t;
  if (a->tail == nullptr) a->tail = t;
  ++a->queued;
}

// Takes the next task, or marks the actor idle when there is none.
Task* RuntimeImpl::take(Actor* a) {
  Shard& s = shard_of(a->key->binding, a->key->id);
  std::lock_guard lock(s.mu);
  Task* t = a->head;
  if (t == nullptr || a->key->binding->paused.load()) {
    // Idle, or parked by a hot swap with its tasks kept for the resume.
    a->phase = Phase::kIdle;
    a->last_used_ms = opts_.clock->mono_ms();
    parked_idle(*a->key->binding);
    // Not kept without a state (a read of an actor with no events, a
    // failed load): an entry per id asked for would grow without bound.
    if (!a->loaded() && evictable(*a)) erase(s, a);
    return nullptr;
  }
  a->head = t->next;
  if (a->head == nullptr) a->tail = nullptr;
  t->next = nullptr;
  --a->queued;
  a->phase = Phase::kRunning;
  return t;
}

void RuntimeImpl::drive(Actor* a) {
  while (Task* t = take(a)) {
    if (!run(a, t)) return;  // went to the store; on_committed continues
  }
}

void RuntimeImpl::set_phase(Actor* a, Phase p) {
  Shard& s = shard_of(a->key->binding, a->key->id);
  std::lock_guard lock(s.mu);
  a->phase = p;
}

// Releases the state of an actor this worker runs.
void RuntimeImpl::deactivate(Actor* a) {
  if (!a->loaded()) return;
  a->key->binding->actor_type->destroy(a->state);
  Shard& s = shard_of(a->key->binding, a->key->id);
  std::lock_guard lock(s.mu);
  a->drop_state();
  --s.active;
  active_actors_.fetch_sub(1);
}

// Counts a new activation and evicts least recently used idle actors of
// the shard beyond its share of max_active_actors.
void RuntimeImpl::note_activated(Actor* self) {
  Shard& s = shard_of(self->key->binding, self->key->id);
  std::lock_guard lock(s.mu);
  ++s.active;
  for (Actor* a = s.lru_tail; a != nullptr && s.active > per_shard_max_;) {
    Actor* prev = a->lru_prev;
    if (a != self && evictable(*a) && a->loaded()) erase(s, a);
    a = prev;
  }
}

// REQUIRES: s.mu held, evictable(*a).
void RuntimeImpl::erase(Shard& s, Actor* a) {
  if (a->loaded()) {
    a->key->binding->actor_type->destroy(a->state);
    --s.active;
    active_actors_.fetch_sub(1);
    passivations_.fetch_add(1);
  }
  lru_unlink(s, a);
  const ActorMapKey key = *a->key;
  s.actors.erase(key);
}

void RuntimeImpl::lru_unlink(Shard& s, Actor* a) {
  if (a->lru_prev) a->lru_prev->lru_next = a->lru_next; else if (s.lru_head == a) s.lru_head = a->lru_next;
  if (a->lru_next) a->lru_next->lru_prev = a->lru_prev; else if (s.lru_tail == a) s.lru_tail = a->lru_prev;
  a->lru_prev = a->lru_next = nullptr;
}

void RuntimeImpl::lru_touch(Shard& s, Actor* a) {
  if (s.lru_head == a) return;
  lru_unlink(s, a);
  a->lru_next = s.lru_head;
  if (s.lru_head) s.lru_head->lru_prev = a;
  s.lru_head = a;
  if (s.lru_tail == nullptr) s.lru_tail = a;
}

void RuntimeImpl::janitor_loop() {
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

}  // namespace aether::runtime_detail
