// Plugin calls under the watchdog: whether a call may be made, and what
// happens to an actor whose call the watchdog gave up (quarantine).
#include "runtime/runtime_impl.hpp"

#include <chrono>

#include "core/log.hpp"

namespace aether::runtime_detail {

// Whether the actor's plugin may be called: not when the actor is
// quarantined, nor when its plugin has too many given-up calls running.
Status RuntimeImpl::callable(const TypeBinding& b, const std::string& id) const {
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

std::string RuntimeImpl::format_ms(int64_t ms) {
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
}

// The watchdog gave up a plugin call (its thread is still inside): answers
// for it, quarantines the actor, fails the commands queued behind it and
// frees the actor for other workers. The state the call uses stays with
// the call and is destroyed when it returns (with the task), by the
// returned Release; the plugin image is kept loaded until then.
Watchdog::Release RuntimeImpl::call_timed_out(const CallSite& site) {
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
    if (a->loaded() && a->state == site.state) {
      a->drop_state();  // the state is the given-up call's now
      --s.active;
      active_actors_.fetch_sub(1);
    }
    queued = a->head;
    a->head = a->tail = nullptr;
    a->queued = 0;
    a->phase = Phase::kIdle;
    a->last_used_ms = opts_.clock->mono_ms();
    parked_idle(b);
    if (!a->loaded() && evictable(*a)) erase(s, a);
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

}  // namespace aether::runtime_detail
