// ClusterNode: where a command runs, forwarding it and the replies.
#include "cluster/node_impl.hpp"
#include "cluster/placement.hpp"
#include "core/subjects.hpp"

namespace aether {

namespace {

// Serializes a command the way parse_command_request reads it.
std::string encode_command(const Command& c) {
  json j{{"command", c.name}};
  json payload = c.payload.empty() ? json::object() : json::parse(c.payload, nullptr, false);
  if (!payload.is_discarded()) j["payload"] = std::move(payload);
  if (c.expected_version) j["expected_version"] = *c.expected_version;
  if (!c.idempotency_key.empty()) j["idempotency_key"] = c.idempotency_key;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

// REQUIRES: mu held.
// Where a command for `shard` runs now: here, on `target`, or after a wait.
ClusterNode::Impl::Route ClusterNode::Impl::where_to_run(uint32_t shard, std::string& target) const {
  if (!have_map || shard >= map.owners.size()) return Route::kWait;
  auto it = map.migrations.find(shard);
  if (it != map.migrations.end()) {
    const Migration& mg = it->second;
    if (is_released(released, mg)) {
      if (mg.to == opts.node_id) return Route::kLocal;
      target = mg.to;
      return Route::kForward;
    }
    if (mg.from == opts.node_id || mg.to == opts.node_id) return Route::kWait;
    target = mg.from;  // it still serves; it will hold the command while it drains
    return Route::kForward;
  }
  const std::string& owner = map.owners[shard];
  if (owner.empty()) return Route::kWait;
  if (owner == opts.node_id) return Route::kLocal;
  target = owner;
  return Route::kForward;
}

// `map_fetched`: the command already waited for a map read (a sender knew
// a newer epoch); it goes on with whatever map this node has now.
void ClusterNode::Impl::route(Command c, RouteTrail trail, RoutedCallback done, int64_t deadline, bool map_fetched) {
  const uint32_t shard = cluster::shard_of(c.type, c.id, opts.shards);
  std::string target;
  uint64_t epoch = 0;
  {
    std::unique_lock lock(mu);
    if (stopping) {
      lock.unlock();
      return done(failed("the host is shutting down", "shutting_down", Applied::kNo));
    }
    const Route r = where_to_run(shard, target);
    epoch = map.epoch;
    const TrailStep step = check_trail(trail, epoch, target, map_fetched);
    if (step == TrailStep::kFetchMap) {
      want_epoch(trail.epoch);
      held.push_back(Held{std::move(c), std::move(trail), std::move(done), deadline, now_ms() + kTickMs, true});
      return;
    }
    if (step == TrailStep::kRedirect) {
      lock.unlock();
      return done(redirect(shard, target, epoch, trail));
    }
    if (r == Route::kWait) {
      if (now_ms() >= deadline) {
        lock.unlock();
        return done(failed("shard " + std::to_string(shard) + " has no serving owner after " +
                               std::to_string(opts.route_wait_ms) +
                               " ms (the cluster is rebalancing or a node died); the command was not run",
                           "owner_unreachable", Applied::kNo));
      }
      held.push_back(Held{std::move(c), std::move(trail), std::move(done), deadline, 0, map_fetched});
      return;
    }
    if (r == Route::kLocal) ++in_flight[shard];
  }
  if (!target.empty()) return forward(std::move(c), std::move(trail), std::move(done), target, deadline, epoch);
  local_commands.fetch_add(1);
  // Kept to run again after a passing failure, when the deadline leaves
  // room for that at all (it only shrinks): no copy on the common path.
  std::optional<Command> again;
  if (retry_fits(deadline)) again = c;
  runtime.send(std::move(c), [this, shard, deadline, again = std::move(again), trail = std::move(trail),
                              done = std::move(done)](CommandResult res) mutable {
    {
      std::lock_guard lock(mu);
      --in_flight[shard];
    }
    changed.notify_all();
    if (again && worth_retrying(res.status, deadline)) {
      retried_commands.fetch_add(1);
      std::lock_guard lock(mu);
      held.push_back(Held{std::move(*again), std::move(trail), std::move(done), deadline, now_ms() + kRetryPauseMs});
      return;
    }
    RoutedResult rr;
    rr.local = std::move(res);
    done(std::move(rr));
  });
}

// A command that failed before anything was stored, for a cause that
// passes (a stream electing its leader, a lookup left unanswered, the
// connection lost and found again), runs again after a pause while its
// deadline still leaves room for the longest attempt: a commit in doubt
// settled, a lookup and a publish, each up to nats.request_timeout. So a
// retry never makes a command answer later than its deadline would have
// let a first attempt answer. A failure that may have stored the commit is
// answered as it is: only the client can retry that, with its idempotency
// key.
bool ClusterNode::Impl::worth_retrying(const Status& s, int64_t deadline) const {
  if (s || s.applied() != Applied::kNo) return false;
  const std::string& cause = s.cause();
  if (cause != "stream_no_leader" && cause != "lookup_timeout" && cause != "nats_disconnected" &&
      cause != "publish_not_acknowledged") {
    return false;
  }
  return retry_fits(deadline);
}

bool ClusterNode::Impl::retry_fits(int64_t deadline) const {
  return now_ms() + kRetryPauseMs + kAttemptRoundTrips * conn.options().request_timeout_ms <= deadline;
}

void ClusterNode::Impl::want_epoch(uint64_t e) {
  uint64_t cur = wanted_epoch.load();
  while (e > cur && !wanted_epoch.compare_exchange_weak(cur, e)) {
  }
}

// The answer to a sender whose command this node would pass to a node it
// already went through: not run; the sender refreshes its map and routes
// it again.
RoutedResult ClusterNode::Impl::redirect(uint32_t shard, const std::string& target, uint64_t epoch, const RouteTrail& trail) {
  RoutedResult r = failed("shard " + std::to_string(shard) + " is owned by " + target + " in shard map epoch " +
                              std::to_string(epoch) + " of node " + opts.node_id + ", which the command already " +
                              "passed (path " + trail.path_text() + "); the command was not run",
                          "owner_unreachable", Applied::kNo);
  r.redirect_epoch = std::max<uint64_t>(epoch, 1);
  return r;
}

void ClusterNode::Impl::forward(Command c, RouteTrail trail, RoutedCallback done, const std::string& target, int64_t route_deadline, uint64_t epoch) {
  // The receiver may hold the command this long; the rest of the reply
  // deadline is for running it and answering.
  const int64_t now = now_ms();
  const int64_t budget = std::min(route_deadline - now, opts.forward_timeout_ms - opts.forward_timeout_ms / 4);
  if (budget < kTickMs || trail.path.size() + 1 >= RouteTrail::kMaxPath) {
    return done(failed("the owner of shard " + std::to_string(cluster::shard_of(c.type, c.id, opts.shards)) +
                           " (" + target + ") was not reached within the command's deadline of " +
                           std::to_string(opts.route_wait_ms) + " ms (path " + trail.path_text() +
                           "); the command was not run",
                       "owner_unreachable", Applied::kNo));
  }
  forwarded.fetch_add(1);
  const std::string subject = subjects::forward(target, ActorKey{c.ns, c.type, c.id});
  const std::string body = encode_command(c);
  RouteTrail next{epoch, trail.path, budget};
  next.path.push_back(opts.node_id);
  uint64_t n = 0;
  {
    std::lock_guard lock(fwd_mu);
    n = ++next_forward;
    forwards[n] = Forward{std::move(done), now + opts.forward_timeout_ms, std::move(c), std::move(trail),
                          route_deadline};
  }
  const std::string reply = reply_prefix + std::to_string(n);
  natsMsg* m = nullptr;
  natsMsg_Create(&m, subject.c_str(), reply.c_str(), body.data(), static_cast<int>(body.size()));
  natsMsgHeader_Set(m, kHeaderEpoch, std::to_string(next.epoch).c_str());
  natsMsgHeader_Set(m, kHeaderPath, next.path_text().c_str());
  natsMsgHeader_Set(m, kHeaderBudget, std::to_string(next.budget_ms).c_str());
  natsStatus s = natsConnection_PublishMsg(conn.nc(), m);
  natsMsg_Destroy(m);
  if (s != NATS_OK) {
    if (auto f = take_forward(n)) {
      const bool up = conn.connected();
      f->done(failed((up ? nats_error(s, "cluster: forwarding to " + target) : conn.not_connected_message()) +
                         "; the command was not run",
                     up ? "owner_unreachable" : "nats_disconnected", Applied::kNo));
    }
  }
}

std::optional<ClusterNode::Impl::Forward> ClusterNode::Impl::take_forward(uint64_t n) {
  std::lock_guard lock(fwd_mu);
  auto it = forwards.find(n);
  if (it == forwards.end()) return std::nullopt;
  Forward f = std::move(it->second);
  forwards.erase(it);
  return f;
}

// Reads the published map (from the bucket's leader) when a sender or a
// redirect named a newer epoch than this node's: at most once per tick,
// and once per such request, so that a forged epoch costs one read.
void ClusterNode::Impl::refresh_map() {
  const uint64_t wanted = wanted_epoch.exchange(0);
  {
    std::lock_guard lock(mu);
    if (wanted <= map.epoch) return;
  }
  std::string text;
  uint64_t rev = 0;
  const std::string bucket = opts.bucket_prefix + "_MAP";
  int got = kv_get_leader(conn, bucket, "map", text, rev);
  if (got != NATS_OK && got != NATS_NOT_FOUND) {
    // The bucket's leader does not answer (after a server's pause its group
    // may take seconds to elect one, while the nodes disagree about owners):
    // any replica's copy. A map never changes under its epoch and only a
    // newer one than this node's is installed, so a copy that lags costs
    // only another try, at the next redirect or tick.
    got = kv_get_any_replica(conn, bucket, "map", text, rev);
    want_epoch(wanted);
  }
  if (got != NATS_OK) return;
  if (auto m = decode_map(text); m && map_fits(*m, opts.shards)) install_map(std::move(*m));
}

void ClusterNode::Impl::on_reply(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  run_guarded("cluster: forwarded reply", [&] { static_cast<Impl*>(closure)->reply_arrived(msg); });
}

void ClusterNode::Impl::reply_arrived(natsMsg* msg) {
  const std::string subject = natsMsg_GetSubject(msg);
  const uint64_t n = std::strtoull(subject.c_str() + reply_prefix.size(), nullptr, 10);
  auto taken = take_forward(n);
  if (!taken) {
    natsMsg_Destroy(msg);
    return;
  }
  Forward& f = *taken;
  const char* redirect = nullptr;
  const bool redirected = natsMsgHeader_Get(msg, kHeaderRedirect, &redirect) == NATS_OK && redirect != nullptr;
  if (redirected || natsMsg_IsNoResponders(msg)) {
    if (redirected) want_epoch(std::strtoull(redirect, nullptr, 10));
    natsMsg_Destroy(msg);
    if (now_ms() >= f.route_deadline) {
      return f.done(failed("the owner of this actor's shard was not reached (" +
                               std::string(redirected ? "the nodes disagree about it" : "no responders") +
                               ") within " + std::to_string(opts.route_wait_ms) + " ms; the command was not run",
                           "owner_unreachable", Applied::kNo));
    }
    // The owner is gone (or not subscribed yet), or the map here is older
    // than the receiver's: wait for the map to change.
    std::lock_guard lock(mu);
    held.push_back(Held{std::move(f.command), std::move(f.trail), std::move(f.done), f.route_deadline,
                        now_ms() + kTickMs});
    return;
  }
  RoutedResult r;
  r.remote = true;
  const char* st = nullptr;
  r.http_status = natsMsgHeader_Get(msg, "Aether-Status", &st) == NATS_OK && st ? std::atoi(st) : 200;
  if (r.http_status < 200 || r.http_status > 599) r.http_status = 502;  // not what a host sends
  r.body.assign(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg)));
  natsMsg_Destroy(msg);
  f.done(std::move(r));
}

// Re-routes held commands whose time has come; fails expired forwards.
void ClusterNode::Impl::retry_held() {
  std::deque<Held> now_due;
  const int64_t now = now_ms();
  {
    std::lock_guard lock(mu);
    std::deque<Held> keep;
    for (auto& h : held) {
      if (h.not_before <= now) now_due.push_back(std::move(h));
      else keep.push_back(std::move(h));
    }
    held.swap(keep);
  }
  for (auto& h : now_due) route(std::move(h.command), std::move(h.trail), std::move(h.done), h.deadline, h.map_fetched);
  std::vector<Forward> expired;
  {
    std::lock_guard lock(fwd_mu);
    for (auto it = forwards.begin(); it != forwards.end();) {
      if (it->second.deadline <= now) {
        expired.push_back(std::move(it->second));
        it = forwards.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& f : expired) {
    f.done(failed("no reply from the owning node within " + std::to_string(opts.forward_timeout_ms) +
                      " ms; the command may or may not have run",
                  "owner_unreachable", Applied::kMaybe));
  }
}

}  // namespace aether
