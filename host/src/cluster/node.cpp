// ClusterNode: start, stop, the control loop and the public methods.
#include "cluster/node_impl.hpp"

#include "cluster/placement.hpp"
#include "core/log.hpp"
#include "core/subjects.hpp"

namespace aether {

ClusterNode::Impl::~Impl() {
  map_watch.reset();
  nodes_watch.reset();
  if (reply_sub) natsSubscription_Destroy(reply_sub);
  lease.reset();
}

Status ClusterNode::Impl::open_bucket(std::unique_ptr<cluster::KvBucket>& out, const std::string& suffix,
                                      int64_t max_age_ms) {
  KvBucketOptions o;
  o.name = opts.bucket_prefix + "_" + suffix;
  o.max_age_ms = max_age_ms;
  o.replicas = opts.replicas;
  auto kv = cluster::open_nats_bucket(conn, o, "cluster");
  if (!kv) return kv.status();
  out = std::move(kv).value();
  return Status::ok();
}

Status ClusterNode::Impl::start() {
  if (Status s = open_bucket(nodes_kv, "NODES", opts.node_ttl_ms); !s) return s;
  if (Status s = open_bucket(leader_kv, "LEADER", opts.node_ttl_ms); !s) return s;
  if (Status s = open_bucket(map_kv, "MAP", 0); !s) return s;
  lease = std::make_unique<cluster::LeaderLease>(*leader_kv, opts.node_id, opts.node_ttl_ms);
  // Every node of a cluster must place actors on the same shards.
  if (auto e = map_kv->get("map"); e && e->has_value()) {
    auto m = decode_map((*e)->value);
    if (m && m->owners.size() != opts.shards) {
      return Status::invalid("cluster.shards is " + std::to_string(opts.shards) + " on " + opts.node_id +
                             " but the cluster in bucket " + opts.bucket_prefix + "_MAP uses " +
                             std::to_string(m->owners.size()) + "; every node must use the same shard count");
    }
  }
  natsInbox* inbox = nullptr;
  natsInbox_Create(&inbox);
  reply_prefix = std::string(inbox) + ".";
  natsInbox_Destroy(inbox);
  natsStatus s = natsConnection_Subscribe(&reply_sub, conn.nc(), (reply_prefix + "*").c_str(), &Impl::on_reply, this);
  if (s != NATS_OK) return Status::unavailable(nats_error(s, "cluster: reply subscription"));
  natsSubscription_SetPendingLimits(reply_sub, 1 << 20, 1 << 30);
  auto mw = map_kv->watch_all();
  if (!mw) return Status::unavailable("cluster: watching the shard map: " + mw.status().message());
  map_watch = std::move(mw).value();
  auto nw = nodes_kv->watch_all();
  if (!nw) return Status::unavailable("cluster: watching the members: " + nw.status().message());
  nodes_watch = std::move(nw).value();
  // The members present now, before this node can lead: a leader that
  // missed one would take its shards away.
  const int64_t until = now_ms() + std::max<int64_t>(2000, 4 * conn.options().request_timeout_ms);
  for (bool initial_done = false; !initial_done;) {
    auto e = nodes_watch->next(kWatchWaitMs);
    if (e && !e->has_value()) initial_done = true;
    else if (e) on_member_entry(**e);
    else if (now_ms() >= until) return Status::unavailable("cluster: reading the members: " + e.status().message());
  }
  heartbeat();
  own_entry_seen_ms = now_ms();
  watcher = std::thread([this] { guarded_loop("cluster: shard map watcher", [this] { watch_step(); }); });
  members_watcher = std::thread([this] { guarded_loop("cluster: member watcher", [this] { members_step(); }); });
  control = std::thread([this] { control_loop(); });
  return Status::ok();
}

void ClusterNode::Impl::stop() {
  {
    std::lock_guard lock(mu);
    if (stopping) return;
    stopping = true;
  }
  changed.notify_all();
  if (control.joinable()) control.join();
  if (watcher.joinable()) watcher.join();
  if (members_watcher.joinable()) members_watcher.join();
  if (reply_sub) natsSubscription_Unsubscribe(reply_sub);
  // Whatever still waits gets an answer.
  std::deque<Held> rest;
  {
    std::lock_guard lock(mu);
    rest.swap(held);
  }
  for (auto& h : rest) h.done(failed("the host is shutting down", "shutting_down", Applied::kNo));
  std::unordered_map<uint64_t, Forward> fw;
  {
    std::lock_guard lock(fwd_mu);
    fw.swap(forwards);
  }
  for (auto& [_, f] : fw) f.done(failed("the host is shutting down", "shutting_down", Applied::kMaybe));
}

void ClusterNode::Impl::control_loop() {
  int64_t last_campaign = 0;
  int64_t last_lead = 0;
  while (true) {
    {
      std::unique_lock lock(mu);
      changed.wait_for(lock, std::chrono::milliseconds(kTickMs), [&] { return stopping; });
      if (stopping) return;
    }
    run_guarded("cluster: control loop", [&] {
      const int64_t now = now_ms();
      if (now - last_heartbeat.load() >= opts.heartbeat_ms) heartbeat();
      if (now - last_campaign >= (is_leader.load() ? opts.heartbeat_ms : 4 * kTickMs)) {
        campaign();
        last_campaign = now;
      }
      if (is_leader.load() && now - last_lead >= 4 * kTickMs) {
        lead();
        last_lead = now;
      }
      drain();
      refresh_map();
      retry_held();
    });
  }
}

std::string ClusterNode::forward_subject(const std::string& node_id) { return subjects::forward_prefix(node_id); }

Result<std::unique_ptr<ClusterNode>> ClusterNode::start(const ClusterOptions& options, NatsConnection& connection,
                                                        Runtime& runtime) {
  if (options.shards == 0) return Status::invalid("cluster.shards must be at least 1");
  if (options.heartbeat_ms >= options.node_ttl_ms) {
    return Status::invalid("cluster.heartbeat_ms must be less than cluster.node_ttl_ms");
  }
  auto impl = std::make_unique<Impl>(options, connection, runtime);
  if (Status s = impl->start(); !s) return s;
  log::info("cluster: node " + options.node_id + " joined (" + std::to_string(options.shards) + " shards, node TTL " +
            std::to_string(options.node_ttl_ms) + " ms)");
  return std::unique_ptr<ClusterNode>(new ClusterNode(std::move(impl)));
}

ClusterNode::ClusterNode(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ClusterNode::~ClusterNode() { stop(); }

void ClusterNode::route(Command command, RouteTrail trail, RoutedCallback done) {
  // A forwarded command may wait here only as long as its sender allows.
  int64_t wait = impl_->opts.route_wait_ms;
  if (trail.budget_ms >= 0) wait = std::min(wait, trail.budget_ms);
  impl_->route(std::move(command), std::move(trail), std::move(done), now_ms() + wait);
}

Status ClusterNode::leave(int64_t timeout_ms) {
  impl_->leaving.store(true);
  impl_->heartbeat();
  const int64_t deadline = now_ms() + timeout_ms;
  Status result = Status::ok();
  int64_t next_check = 0;
  while (!impl_->owns_nothing_and_settled()) {
    if (now_ms() >= next_check) {
      // Nobody to hand off to (the whole cluster is stopping): do not wait.
      bool someone = false;
      for (const auto& [id, info] : impl_->read_members()) {
        someone = someone || (id != impl_->opts.node_id && !info.value("leaving", false));
      }
      if (!someone) {
        log::info("cluster: no other node to take this node's shards; leaving without a handoff");
        break;
      }
      next_check = now_ms() + 250;
    }
    if (now_ms() >= deadline) {
      result = Status::unavailable("cluster: node " + impl_->opts.node_id + " still owns shards after " +
                                   std::to_string(timeout_ms) + " ms; leaving anyway");
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(kTickMs));
  }
  return result;
}

void ClusterNode::stop() {
  const bool was_running = impl_->control.joinable();
  impl_->stop();
  if (was_running && impl_->leaving.load()) {
    (void)impl_->nodes_kv->erase(impl_->opts.node_id);
    impl_->lease->release();
    log::info("cluster: node " + impl_->opts.node_id + " left");
  }
}

bool ClusterNode::serves(const std::string& type, const std::string& id) const {
  std::string target;
  std::lock_guard lock(impl_->mu);
  return impl_->where_to_run(cluster::shard_of(type, id, impl_->opts.shards), target) == Impl::Route::kLocal;
}

}  // namespace aether
