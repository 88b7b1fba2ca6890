// Activation: loads an actor from its latest usable snapshot (upgraded when
// older) and the events after it, or guesses that it is new.
#include "runtime/runtime_impl.hpp"

#include "core/log.hpp"
#include "core/names.hpp"
#include "runtime/idempotency.hpp"

namespace aether::runtime_detail {

// Whether a command may run on a guess that the actor is new, without a
// round trip to the store first. The guess is checked by the commit itself
// (the store's version check of version 0); a command without a commit, or
// a failed check, loads the actor and runs again. Not when the store may
// have dropped events (its version check of 0 would then pass for an actor
// with a snapshot), nor for keyed commands (their lookup is a round trip
// anyway), queries, or a command pinned to another version.
bool RuntimeImpl::may_assume_new(const Actor* a, const Task* t) const {
  return a->state == nullptr && !t->query && !t->confirm && t->retries == 0 &&
         t->command.idempotency_key.empty() && !events_.may_drop_events() &&
         (!t->command.expected_version || *t->command.expected_version == 0);
}

Status RuntimeImpl::activate_as_new(Actor* a) {
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
Status RuntimeImpl::activate(Actor* a, Task* t) {
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
Status RuntimeImpl::replay(const CallSite& site, const ActorKey& key, const ActorType& type, uint64_t latest,
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
bool RuntimeImpl::use_snapshot(const CallSite& site, const ActorKey& key, const ActorType& type,
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

}  // namespace aether::runtime_detail
