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
  if (a->loaded() || t->query()) return false;
  const CommandTask& c = t->cmd();
  return !c.confirm && c.retries == 0 && c.command.idempotency_key.empty() && journal_.empty_stream_is_new() &&
         (!c.command.expected_version || *c.command.expected_version == 0);
}

Status RuntimeImpl::activate_as_new(Actor* a) {
  auto created = a->key->binding->actor_type->create();
  if (!created) return created.status();
  a->take_state(*created, Life::kGuessedNew, 0, 0);
  active_actors_.fetch_add(1);
  note_activated(a);
  return Status::ok();
}

// Builds an actor's state from what Journal::load hands it: a new state at
// begin(), the snapshot when it restores, then each event applied. After a
// plugin call was given up (given_up), it touches nothing more: the state
// being loaded then belongs to the watchdog's abandoned call.
class RuntimeImpl::Loader final : public LoadSink {
 public:
  Loader(RuntimeImpl& rt, Task* t, Actor* a, const ActorKey& key)
      : rt_(rt), t_(t), a_(a), key_(key), b_(*a->key->binding), type_(*b_.actor_type) {}
  ~Loader() override {
    if (state_ != nullptr && !given_up) type_.destroy(state_);
  }

  // A query of an actor without history loads nothing (kNotFound).
  Status begin(bool empty) override {
    if (t_->query() && empty) return no_events(b_, key_.id);
    return fresh_state();
  }

  bool snapshot(const Snapshot& s) override {
    auto window = window_from_snapshot(s);
    if (!window) {
      log::warn("actor " + key_.to_string() + ": snapshot v" + std::to_string(s.version) + ": " +
                window.status().message() + "; replaying events instead");
    }
    const bool restored = window && rt_.use_snapshot({t_, a_, state_, "restore"}, key_, type_, s);
    if (given_up) return true;  // nothing more is read: event() stops the load
    if (!restored) {
      // restore may have left the state half-written: start clean.
      type_.destroy(state_);
      state_ = nullptr;
      failed_ = fresh_state();  // on an error, event() stops the load with it
      return false;
    }
    version_ = s.version;
    snapshot_version_ = s.version;
    from_snapshot_ = true;
    keys_ = std::move(window).value();
    return true;
  }

  Status event(const StoredEvent& e) override {
    if (given_up) return Status::unavailable("the replay was given up");
    if (!failed_) return failed_;
    const int idx = type_.event_index(e.type);
    if (idx < 0) {
      return Status::corruption("actor " + key_.to_string() + ", event at version " +
                                std::to_string(e.version) + ": event type " + quote_for_message(e.type) +
                                " is not in the model of " + type_.name() + " (plugin " +
                                type_.plugin().name() + " " + type_.plugin().version() + ")");
    }
    Status s;
    if (!rt_.watched({t_, a_, state_, "apply"},
                     [&] { s = type_.apply(state_, static_cast<uint32_t>(idx), e.payload, e.version); })) {
      return Status::unavailable("the replay was given up");
    }
    if (!s) {
      return Status(StatusCode::kCorruption, "actor " + key_.to_string() + ", replay at version " +
                                                 std::to_string(e.version) + ": " + s.message());
    }
    if (replayed_ == 0 && e.version != version_ + 1) {
      // The stream dropped older events (its limits): their keys are gone.
      if (!keys_) keys_ = std::make_unique<IdempotencyWindow>();
      keys_->mark_incomplete();
    }
    remember_key(keys_, e, rt_.opts_.idempotency, now_ms_);
    version_ = e.version;
    ++replayed_;
    return Status::ok();
  }

  // The loaded state goes to the actor (the Loader no longer owns it).
  void install() {
    a_->take_state(std::exchange(state_, nullptr), Life::kLoaded, version_, snapshot_version_);
    a_->keys = std::move(keys_);
  }
  bool failed() const { return !failed_; }
  Status failure() const { return failed_; }
  uint64_t replayed() const { return replayed_; }
  bool from_snapshot() const { return from_snapshot_; }

 private:
  Status fresh_state() {
    auto created = type_.create();
    if (!created) return created.status();
    state_ = *created;
    return Status::ok();
  }

  RuntimeImpl& rt_;
  Task* t_;
  Actor* a_;
  const ActorKey& key_;
  const TypeBinding& b_;
  const ActorType& type_;
  const int64_t now_ms_ = rt_.opts_.clock->wall_ms();
  void* state_ = nullptr;
  uint64_t version_ = 0;
  uint64_t snapshot_version_ = 0;
  uint64_t replayed_ = 0;
  bool from_snapshot_ = false;
  std::unique_ptr<IdempotencyWindow> keys_;
  Status failed_ = Status::ok();  // a new state could not be made after a failed restore
};

// Loads the latest usable snapshot and replays the events after it, for
// task `t` (Journal::load). `t->known_latest()` > 0: the actor's version as
// the journal has just reported it, so it is not asked again (if it moved
// since, the next commit's version check says so). After a plugin call was
// given up (given_up), the return value means nothing and nothing may be
// touched.
Status RuntimeImpl::activate(Actor* a, Task* t) {
  const TypeBinding& b = *a->key->binding;
  const ActorKey key{b.ns, b.type, a->key->id};
  Loader loader(*this, t, a, key);
  Status rs = journal_.load(key, t->known_latest(), loader);
  if (given_up) return Status::ok();
  if (rs && loader.failed()) rs = loader.failure();
  if (!rs) {
    if (rs.code() != StatusCode::kNotFound) log::error(rs.message());
    return rs;
  }
  loader.install();
  const uint64_t replayed = loader.replayed();
  activations_.fetch_add(1);
  events_replayed_.fetch_add(replayed);
  last_replay_length_.store(replayed);
  active_actors_.fetch_add(1);
  if (observer_) observer_->on_activation(b.type, replayed, loader.from_snapshot());
  note_activated(a);
  // A long replay is worth a snapshot now, so the next activation is short.
  if (b.snapshot.every > 0 && replayed >= b.snapshot.every) maybe_snapshot(a, t);
  return Status::ok();
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
