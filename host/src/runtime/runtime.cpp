// The runtime's entry points: create, start and stop, validation of what is
// sent, the API's reads and counters.
#include "runtime/runtime_impl.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <future>
#include <thread>

#include "core/json_limits.hpp"
#include "core/log.hpp"
#include "core/names.hpp"
#include "runtime/idempotency.hpp"

namespace aether {

CommandResult Runtime::send_sync(Command command) {
  std::promise<CommandResult> p;
  auto f = p.get_future();
  send(std::move(command), [&p](CommandResult r) { p.set_value(std::move(r)); });
  return f.get();
}

namespace runtime_detail {

RuntimeImpl::RuntimeImpl(RuntimeOptions opts, PluginRegistry& reg, Journal& journal,
                         RuntimeObserver* observer)
    : opts_(std::move(opts)),
      registry_(reg),
      journal_(journal),
      observer_(observer),
      pool_(opts_.workers == 0 ? std::max(2u, std::thread::hardware_concurrency())
                               : opts_.workers,
            "aether-worker") {
  per_shard_max_ = std::max<size_t>(1, (opts_.max_active_actors + kShards - 1) / kShards);
  if (journal_.remote_reads()) io_pool_ = std::make_unique<WorkerPool>(std::max(1u, opts_.io_threads), "aether-io");
  janitor_ = std::thread([this] { janitor_loop(); });
  snapshotter_ = std::thread([this] { snapshot_loop(); });
}

// A quarter of the shortest call limit, within [5 ms, 100 ms].
int64_t RuntimeImpl::watchdog_tick(const RuntimeOptions& o) {
  int64_t shortest = o.call_timeout_ms > 0 ? o.call_timeout_ms : INT64_MAX;
  for (const auto& [_, t] : o.types) {
    if (t.call_timeout_ms && *t.call_timeout_ms > 0) shortest = std::min(shortest, *t.call_timeout_ms);
  }
  return std::clamp<int64_t>(shortest / 4, 5, 100);
}

Status RuntimeImpl::check_actor(const std::string& ns, const std::string& type,
                                const std::string& id) const {
  return resolve(ns, type, id).status();
}

void RuntimeImpl::send(Command c, CommandCallback done) {
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
  CommandTask& ct = t->work.emplace<CommandTask>();
  if (!c.idempotency_key.empty()) ct.digest = command_digest(c.name, c.payload);
  ct.command = std::move(c);
  ct.done = std::move(done);
  t->start = start;
  enqueue(*b, t);
}

Result<ActorView> RuntimeImpl::query_state(const std::string& ns, const std::string& type, const std::string& id,
                                           bool reload) {
  auto b = resolve(ns, type, id);
  if (!b) return b.status();
  std::promise<Result<ActorView>> p;
  auto f = p.get_future();
  auto* t = new Task();
  t->work = QueryTask{id, reload, [&p](Result<ActorView> r) { p.set_value(std::move(r)); }};
  t->start = SteadyClock::now();
  enqueue(*b, t);
  return f.get();
}

Result<std::vector<StoredEvent>> RuntimeImpl::events(const std::string& ns, const std::string& type,
                                                     const std::string& id, uint64_t from,
                                                     uint64_t limit) {
  auto b = resolve(ns, type, id);
  if (!b) return b.status();
  return journal_.read_all(ActorKey{ns, type, id}, from, limit);
}

RuntimeStats RuntimeImpl::stats() const {
  RuntimeStats s;
  s.commands_ok = commands_ok_.load();
  s.commands_rejected = commands_rejected_.load();
  s.commands_failed = commands_failed_.load();
  s.conflicts = conflicts_.load();
  s.in_doubt_adopted = in_doubt_adopted_.load();
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

void RuntimeImpl::shutdown() {
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
  if (Status s = journal_.flush(); !s) log::error("runtime shutdown: store flush: " + s.message());
  passivate_all();
}

Result<TypeBinding*> RuntimeImpl::resolve(const std::string& ns, const std::string& type,
                                          const std::string& id) const {
  if (std::find(opts_.namespaces.begin(), opts_.namespaces.end(), ns) == opts_.namespaces.end()) {
    return Status::not_found("unknown namespace " + quote_for_message(ns));
  }
  if (std::string why = check_id(id); !why.empty()) {
    return Status::invalid("invalid actor id " + quote_for_message(id) + ": " + why);
  }
  if (std::string why = registry_.refusal(ns, type); !why.empty()) return Status::unavailable(why);
  const std::string key = ns + '\x1f' + type;
  {
    std::shared_lock lock(bind_mu_);
    auto it = bindings_.find(key);
    if (it != bindings_.end()) return it->second.get();
  }
  auto serving = [&]() -> std::shared_ptr<const Plugin> {  // the version that serves it in ns
    auto p = registry_.plugin_for_type(type, ns);
    return p && p->find_type(type) != nullptr ? p : nullptr;
  };
  auto unknown = [&] { return Status::not_found("unknown actor type " + quote_for_message(type)); };
  if (!serving()) return unknown();  // before the exclusive lock
  std::unique_lock lock(bind_mu_);
  if (auto it = bindings_.find(key); it != bindings_.end()) return it->second.get();
  // Read again under the lock: a swap commits the registry before it ends
  // (end_swap(), under this lock), so this is the version it left, or the
  // binding waits for the swap below.
  auto plugin = serving();
  if (!plugin) return unknown();
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
  if (swapping_.scope != nullptr && swapping_.plugin == plugin->name() && swapping_.scope->covers(ns)) {
    b->paused.store(true);  // its tasks park until the swap ends
    swapping_.late.push_back(b.get());
  }
  TypeBinding* bound = b.get();
  bindings_.emplace(key, std::move(b));
  return bound;
}

Status RuntimeImpl::check_payload(const std::string& payload) {
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

thread_local bool RuntimeImpl::on_io_thread = false;
thread_local bool RuntimeImpl::given_up = false;

}  // namespace runtime_detail

Result<std::unique_ptr<Runtime>> Runtime::create(RuntimeOptions options, PluginRegistry& registry,
                                                 Journal& journal, RuntimeObserver* observer) {
  if (options.namespaces.empty()) return Status::invalid("runtime: no namespace configured");
  for (const auto& ns : options.namespaces) {
    if (std::string why = check_name(ns); !why.empty()) {
      return Status::invalid("runtime: namespace " + quote_for_message(ns) + " " + why);
    }
  }
  if (options.mailbox_capacity == 0) return Status::invalid("runtime: mailbox capacity must be >= 1");
  return std::unique_ptr<Runtime>(
      new runtime_detail::RuntimeImpl(std::move(options), registry, journal, observer));
}

}  // namespace aether
