// The command pipeline: runs a task (decide, append, apply, reply), the
// idempotency key and expected version checks, results and their counts.
#include "runtime/runtime_impl.hpp"

#include <aether/host_rules.hpp>

#include <chrono>

#include "core/conflict.hpp"
#include "core/log.hpp"
#include "runtime/idempotency.hpp"

namespace aether::runtime_detail {

// Hands a task that needs a round trip to the store to an I/O thread, which
// then runs this actor's mailbox on; the workers go on with other actors.
// Returns false, as run() does for a task that went to the store.
bool RuntimeImpl::run_on_io(Actor* a, Task* t) {
  io_pool_->post([this, a, t] {
    on_io_thread = true;
    if (run(a, t)) drive(a);
    on_io_thread = false;
  });
  return false;
}

// Runs one task. Returns false when the task is waiting for the store, or
// when the watchdog gave up its plugin call (given_up: `a` is not ours).
bool RuntimeImpl::run(Actor* a, Task* t) {
  if (auto done = prepare(a, t)) return *done;
  if (t->query()) return answer_query(a, t);
  const TypeBinding& b = *a->key->binding;
  const ActorKey key{b.ns, b.type, a->key->id};
  if (!admit_command(a, t, key)) return true;
  return decide_and_append(a, t, key);
}

// Resolves the task's binding and command and activates the actor. Returns
// what run() returns when the task cannot go on here (answered, handed to
// an I/O thread, or given up), nullopt when the actor is ready for it.
std::optional<bool> RuntimeImpl::prepare(Actor* a, Task* t) {
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
  const QueryTask* q = t->query();
  // A read of an actor whose last append has an unknown outcome is answered
  // from the stream: the state it holds may lack that commit.
  const bool doubted = q != nullptr && !q->reload && a->in_doubt != nullptr && a->loaded();
  bool reload = q != nullptr && (q->reload || doubted);
  const bool lookup = !a->loaded() || reload || (q == nullptr && !t->cmd().command.idempotency_key.empty());
  if (lookup && io_pool_ && !on_io_thread && !guess_new) return run_on_io(a, t);
  if (q == nullptr) {
    // Resolved here, not at send(): a hot swap may change the model between.
    CommandTask& c = t->cmd();
    const int index = type.command_index(c.command.name);
    if (index < 0) {
      finish(t, b, error_result(Status::not_found(rules::unknown_command(c.command.name, b.type))));
      return true;
    }
    c.command_index = static_cast<uint32_t>(index);
  }
  // The unanswered commit may still be stored after this read (a server
  // back from a pause works off what it received meanwhile): while the
  // stream does not show it, the doubt stays, and the next read asks the
  // stream again.
  if (doubted) {
    // The stream still ends where the state does: the commit in doubt is
    // not stored (yet), and the state answers. One version lookup a read,
    // not a reload, while the doubt lasts.
    Result<uint64_t> latest = journal_.latest_version(ActorKey{b.ns, b.type, a->key->id});
    if (latest.is_ok() && *latest == a->version) reload = false;
  }
  std::unique_ptr<AppendRequest> doubt;
  if (reload && a->loaded()) {
    doubt = std::move(a->in_doubt);
    deactivate(a);
  }
  if (!a->loaded()) {
    Status s = guess_new ? activate_as_new(a) : activate(a, t);
    if (given_up) return false;
    if (!s) {
      finish(t, b, error_result(s));
      return true;
    }
    if (doubt != nullptr && a->version == doubt->expected_version) a->in_doubt = std::move(doubt);
  }
  return std::nullopt;
}

// The idempotency key and the expected version: false when the command
// was answered by them.
bool RuntimeImpl::admit_command(Actor* a, Task* t, const ActorKey& key) {
  const TypeBinding& b = *a->key->binding;
  const Command& c = t->cmd().command;
  const std::string& digest = t->cmd().digest;
  if (!c.idempotency_key.empty()) {
    auto seen = check_key(a->keys.get(), journal_, key, c.idempotency_key, digest, opts_.idempotency,
                          opts_.clock->wall_ms());
    if (!seen) {
      finish(t, b, error_result(seen.status()));
      return false;
    }
    if (seen->outcome != KeyCheck::Outcome::kNew) {
      finish(t, b, keyed_result(key, c.idempotency_key, digest, seen->first));
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
bool RuntimeImpl::decide_and_append(Actor* a, Task* t, const ActorKey& key) {
  const TypeBinding& b = *a->key->binding;
  const ActorType& type = *b.actor_type;
  CommandTask& ct = t->cmd();
  Command& c = ct.command;
  // What the call reads is read before it: once given up, the actor is no
  // longer this thread's (the id is the task's, which outlives the call).
  Decision d;
  void* const state = a->state;
  const uint64_t version = a->version;
  if (!watched({t, a, state, "decide"},
               [&] { d = type.decide(state, ct.command_index, c.payload, c.id, version); })) {
    return false;
  }
  if (a->life == Life::kGuessedNew && (!d.status || d.events.empty())) {
    // Only a commit confirms the guess: an answer without one needs the
    // actor as the store has it.
    deactivate(a);
    ct.confirm = true;
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
  AppendRequest& req = ct.append;
  req.key = key;
  req.expected_version = a->version;
  req.idempotency_key = c.idempotency_key;
  req.command_digest = ct.digest;
  req.timestamp_ms = opts_.clock->wall_ms();
  req.events.clear();
  req.events.reserve(d.events.size());
  for (auto& e : d.events) req.events.push_back({type.events()[e.index], std::move(e.payload)});
  set_phase(a, Phase::kCommitting);
  journal_.append(req, [this, a, t](AppendResult r) {
    pool_.post([this, a, t, r = std::move(r)]() mutable {
      if (on_committed(a, t, t->cmd().append, std::move(r))) drive(a);
    });
  });
  return false;
}

// Answers a state query of an actor that run() has activated. Returns
// false iff its view call was given up.
bool RuntimeImpl::answer_query(Actor* a, Task* t) {
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
  t->query()->done(std::move(r));
  done_task(t);
  return true;
}

// Returns false iff a plugin call was given up (the thread then leaves
// `a` and `t` alone).
bool RuntimeImpl::on_committed(Actor* a, Task* t, AppendRequest& req, AppendResult r) {
  given_up = false;
  const TypeBinding& b = *a->key->binding;
  CommandTask& ct = t->cmd();
  const bool guessed = a->life == Life::kGuessedNew;
  if (guessed) a->life = Life::kLoaded;  // confirmed, or dropped below
  // The previous append in doubt is settled by this one, unless this one
  // also failed before it was sent (kept below).
  std::unique_ptr<AppendRequest> doubt = std::move(a->in_doubt);
  if (r.status.code() == StatusCode::kConflict && r.previous_append_stored && doubt) {
    // Our own commit, whose publish went unanswered, is stored: apply it
    // and decide again on the new state, without reading the actor back
    // (the stream leader may be the one that is away).
    if (adopt_in_doubt(a, t, *doubt, r.current_version)) {
      requeue_front(a, t);
      return true;
    }
    if (given_up) return false;
  }
  if (r.status.code() == StatusCode::kConflict && guessed && !ct.command.expected_version) {
    // The actor was not new after all: load it and decide again (not a
    // conflict with another writer, and no retry spent). The store has
    // just looked up its version: the load need not ask again.
    deactivate(a);
    ct.confirm = true;
    ct.known_latest = r.current_version;
    requeue_front(a, t);
    return true;
  }
  if (r.status.code() == StatusCode::kConflict) {
    conflicts_.fetch_add(1);
    // Someone else wrote: our state is stale. Reload and decide again,
    // unless the caller pinned a version.
    deactivate(a);
    if (!ct.command.expected_version && ct.retries < opts_.conflict_retries) {
      ++ct.retries;
      requeue_front(a, t);
      return true;
    }
    finish(t, b, conflict_result(req.key, req.expected_version, r.current_version));
    return true;
  }
  if (!r.status) {
    if (guessed) {
      deactivate(a);  // unconfirmed: the next command starts over
    } else if (a->loaded()) {
      a->in_doubt = r.status.applied() == Applied::kMaybe ? std::make_unique<AppendRequest>(std::move(req))
                                                          : std::move(doubt);
    }
    finish(t, b, error_result(r.status));
    return true;
  }
  if (r.duplicate) {
    // The store knew the key: a commit this actor did not know of.
    deactivate(a);
    finish(t, b, keyed_result(req.key, req.idempotency_key, ct.digest,
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

bool RuntimeImpl::adopt_in_doubt(Actor* a, Task* t, const AppendRequest& doubt, uint64_t current) {
  if (!a->loaded() || doubt.expected_version != a->version || doubt.expected_version + doubt.events.size() != current) {
    return false;
  }
  const ActorType& type = *a->key->binding->actor_type;
  uint64_t v = a->version;
  for (const NewEvent& e : doubt.events) {
    const int idx = type.event_index(e.type);
    if (idx < 0) return false;
    Status s;
    void* const state = a->state;
    if (!watched({t, a, state, "apply"}, [&] { s = type.apply(state, static_cast<uint32_t>(idx), e.payload, v + 1); })) {
      return false;
    }
    // Half applied: the conflict path drops the state and reloads.
    if (!s) return false;
    a->version = ++v;
  }
  events_appended_.fetch_add(doubt.events.size());
  if (observer_) observer_->on_events_appended(a->key->binding->type, doubt.events.size());
  if (!doubt.idempotency_key.empty()) {
    StoredEvent last{current, doubt.events.back().type, doubt.events.back().payload, doubt.timestamp_ms};
    last.idempotency_key = doubt.idempotency_key;
    last.command_digest = doubt.command_digest;
    last.commit_first_version = doubt.expected_version + 1;
    remember_key(a->keys, last, opts_.idempotency, opts_.clock->wall_ms());
  }
  in_doubt_adopted_.fetch_add(1);
  return true;
}

// Applies a stored commit to the actor's state and replies (the store has
// made the commit visible on its events subject).
// Returns false iff an apply or snapshot call was given up.
bool RuntimeImpl::apply_committed(Actor* a, Task* t, AppendRequest& req, const AppendResult& r) {
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
  if (!req.idempotency_key.empty() && a->loaded()) {
    StoredEvent& last = out.events.back();
    last.idempotency_key = req.idempotency_key;
    last.command_digest = req.command_digest;
    last.commit_first_version = r.first_version;
    remember_key(a->keys, last, opts_.idempotency, opts_.clock->wall_ms());
  }
  finish(t, b, std::move(out));
  if (a->loaded()) maybe_snapshot(a, nullptr);
  return !given_up;
}

CommandResult RuntimeImpl::conflict_result(const ActorKey& key, uint64_t attempted, uint64_t current) {
  CommandResult r;
  r.status = version_conflict(key, attempted, current);
  r.attempted_version = attempted;
  r.current_version = current;
  return r;
}

// The answer to a command whose key was used before: the first result,
// or 422 when that was another command.
CommandResult RuntimeImpl::keyed_result(const ActorKey& key, const std::string& idempotency_key,
                                        const std::string& digest, const IdempotentCommit& first) {
  if (digests_match(first.digest, digest)) return duplicate_result(key, first);
  CommandResult r;
  r.status = key_reused(key, idempotency_key, first);
  r.reject_code = kIdempotencyKeyReused;
  return r;
}

CommandResult RuntimeImpl::duplicate_result(const ActorKey& key, const IdempotentCommit& c) {
  CommandResult r;
  r.duplicate = true;
  r.version = c.last_version;
  auto ev = journal_.read_all(key, c.first_version, c.last_version - c.first_version + 1);
  if (!ev) return error_result(ev.status());
  r.events = std::move(ev).value();
  return r;
}

void RuntimeImpl::finish(Task* t, const TypeBinding& b, CommandResult r) {
  answer(t, b, std::move(r));
  delete t;
}

// Replies for `t` and counts it done, leaving `t` itself alone.
void RuntimeImpl::answer(Task* t, const TypeBinding& b, CommandResult r) {
  if (QueryTask* q = t->query()) {
    q->done(r.status);
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
  t->cmd().done(std::move(r));
  task_done();
}

void RuntimeImpl::finish_early(const std::string& type, CommandCallback done, Status s,
                               SteadyClock::time_point start) {
  commands_failed_.fetch_add(1);
  if (observer_) {
    observer_->on_command(type, status_code_name(s.code()),
                          std::chrono::duration<double>(SteadyClock::now() - start).count());
  }
  done(error_result(std::move(s)));
}

void RuntimeImpl::fail_task(Task* t, Status s) {
  if (QueryTask* q = t->query()) {
    q->done(std::move(s));
    delete t;
    return;
  }
  const std::string type = t->cmd().command.type;
  finish_early(type, std::move(t->cmd().done), std::move(s), t->start);
  delete t;
}

void RuntimeImpl::done_task(Task* t) {
  delete t;
  task_done();
}

void RuntimeImpl::task_done() {
  if (in_flight_.fetch_sub(1) == 1 && stopping_.load()) {
    std::lock_guard lock(stop_mu_);
    stop_cv_.notify_all();
  }
}

}  // namespace aether::runtime_detail
