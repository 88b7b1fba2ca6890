// ClusterNode: membership (heartbeats, the members bucket) and the leader lease.
#include "cluster/failover.hpp"
#include "cluster/node_impl.hpp"
#include "core/json_limits.hpp"
#include "core/log.hpp"
#include "core/names.hpp"

namespace aether {

namespace {

// True iff `info` (a member's entry, which anyone who may write the bucket
// can forge) has the shape node_info() writes, so that reading it never
// throws.
bool member_info_ok(const json& info) {
  if (!info.is_object()) return false;
  const auto str = [&](const char* k) { return !info.contains(k) || info[k].is_string(); };
  const auto boolean = [&](const char* k) { return !info.contains(k) || info[k].is_boolean(); };
  if (!str("id") || !str("ingress") || !boolean("leaving")) return false;
  if (info.contains("plugins")) {
    if (!info["plugins"].is_array()) return false;
    for (const auto& p : info["plugins"]) {
      if (!p.is_string()) return false;
    }
  }
  if (info.contains("load")) {
    const json& l = info["load"];
    if (!l.is_object()) return false;
    for (const char* k : {"active_actors", "commands"}) {
      if (l.contains(k) && !l[k].is_number_unsigned()) return false;
    }
  }
  return true;
}

}  // namespace

json ClusterNode::Impl::node_info() const {
  const auto st = runtime.stats();
  return json{{"id", opts.node_id},
              {"ingress", ClusterNode::forward_subject(opts.node_id)},
              {"plugins", opts.plugins},
              {"load", {{"active_actors", st.active_actors}, {"commands", local_commands.load()}}},
              {"leaving", leaving.load()}};
}

// A run of failed heartbeats (an outage fails one every heartbeat) is
// logged at its first failure, then every kHeartbeatWarnEveryMs, and once
// more when a heartbeat is taken again.
void ClusterNode::Impl::heartbeat() {
  constexpr int64_t kHeartbeatWarnEveryMs = 10000;
  const std::string v = node_info().dump();
  const int64_t now = now_ms();
  if (Status s = nodes_kv->put(opts.node_id, v); !s) {
    heartbeats_ok_since.store(0);
    int64_t none = 0;
    const bool first = heartbeats_failing_since.compare_exchange_strong(none, now);
    const uint64_t failed = heartbeats_failed.fetch_add(1) + 1;
    if (first || now - heartbeat_warned_at.load() >= kHeartbeatWarnEveryMs) {
      heartbeat_warned_at.store(now);
      log::warn("cluster: heartbeat: " + s.message() +
                (first ? std::string()
                       : " (" + std::to_string(failed) + " failed in a row over " +
                             std::to_string(now - heartbeats_failing_since.load()) + " ms)"));
    }
  } else {
    int64_t none = 0;
    heartbeats_ok_since.compare_exchange_strong(none, now);
    heartbeat_ok_at.store(now);
    if (const int64_t since = heartbeats_failing_since.exchange(0); since != 0) {
      log::info("cluster: heartbeats of " + opts.node_id + " are taken again after " +
                std::to_string(heartbeats_failed.exchange(0)) + " failed over " + std::to_string(now - since) +
                " ms");
    }
  }
  last_heartbeat.store(now);
}

// One turn of the leader lease (cluster/leader_lease.hpp).
void ClusterNode::Impl::campaign() {
  const cluster::LeaseTurn turn = lease->campaign(!leaving.load());
  switch (turn.kind) {
    case cluster::LeaseTurn::kHeld:
      return;
    case cluster::LeaseTurn::kLost:
      log::warn("cluster: leader lease lost by " + opts.node_id + ": " + turn.error);
      is_leader.store(false);
      return;
    case cluster::LeaseTurn::kTaken: {
      is_leader.store(true);
      std::lock_guard lock(mu);
      leader_id = opts.node_id;
      planned_at.clear();
      log::info("cluster: " + opts.node_id + " is the leader");
      return;
    }
    case cluster::LeaseTurn::kFollower:
      if (!turn.leader.empty()) {
        std::lock_guard lock(mu);
        leader_id = turn.leader;
      }
      return;
  }
}

// A put refreshes a member; a delete (a node that left) removes it.
void ClusterNode::Impl::on_member_entry(const cluster::KvEntry& e) {
  const std::string& key = e.key;
  const bool put = !e.deleted;
  const uint64_t rev = e.revision;
  json info = put && check_json_text(e.value, 8, "member") ? json::parse(e.value, nullptr, false) : json();
  std::lock_guard lock(members_mu);
  auto it = members.find(key);
  if (!put) members.erase(key);
  else if (it != members.end() && it->second.revision == rev) return;  // read again, not a new heartbeat
  else if (auto g = gone.find(key); g != gone.end() && rev <= g->second.revision) return;  // the entry it died with
  else if (member_info_ok(info)) {
    members[key] = Member{std::move(info), now_ms(), rev};
    gone.erase(key);
  } else log::warn("cluster: ignoring an undecodable entry for member " + quote_for_message(key));
}

// A put of this node's own entry is a heartbeat, which the watcher shows
// within a few ticks. A watcher that shows none while heartbeats have been
// taken for three heartbeat intervals has stopped delivering (its consumer
// was lost with a NATS server; the watch itself finds that out only after
// 5 s without a message): it is replaced by a new one, which delivers every
// entry afresh. Until then a member that came back after an outage, or
// joined, would not be seen.
void ClusterNode::Impl::members_step() {
  auto e = nodes_watch->next(kWatchWaitMs);
  const int64_t now = now_ms();
  if (e && e->has_value()) {
    if ((*e)->key == opts.node_id) own_entry_seen_ms = now;
    on_member_entry(**e);
    return;
  }
  const int64_t ok_since = heartbeats_ok_since.load();
  const int64_t stale_after = 3 * opts.heartbeat_ms + kTickMs;
  if (ok_since == 0 || now - ok_since < stale_after || now - own_entry_seen_ms < stale_after) return;
  auto nw = nodes_kv->watch_all();
  if (!nw) {
    log::warn("cluster: renewing the members watcher: " + nw.status().message());
    own_entry_seen_ms = now;  // tried again after another stale_after
    return;
  }
  log::warn("cluster: the members watcher delivered none of " + opts.node_id +
            "'s heartbeats; watching the members bucket anew");
  nodes_watch = std::move(nw).value();
  own_entry_seen_ms = now;
}

// Members taken for dead are looked up again, once a heartbeat interval:
// one whose key is back is a member again, also when the watcher missed its
// return (a watcher whose consumer was lost delivers nothing until it is
// renewed).
void ClusterNode::Impl::recheck_gone(int64_t now) {
  std::vector<std::string> ids;
  {
    std::lock_guard lock(members_mu);
    if (now - gone_checked_ms < opts.heartbeat_ms) return;
    gone_checked_ms = now;
    for (auto it = gone.begin(); it != gone.end();) {
      if (now - it->second.at_ms > kGoneKeptMs) {
        it = gone.erase(it);
      } else {
        ids.push_back(it->first);
        ++it;
      }
    }
  }
  for (const auto& id : ids) {
    auto e = nodes_kv->get(id);
    if (!e || !e->has_value()) continue;
    on_member_entry(**e);
    std::lock_guard lock(members_mu);
    if (!gone.count(id)) log::info("cluster: member " + id + " is back (its key is in the bucket again)");
  }
}

// The live members. The bucket's TTL removes a silent node's entry without
// a delete marker, so a member not heard from for longer than a heartbeat
// (and some slack) is looked up, from the bucket's leader: it is dead when
// its key is gone, or when the leader still holds the revision this node
// saw arrive a whole node TTL ago. The second is the key's expiry judged
// by this node's clock: nats-server removes expired keys on a timer that
// ran up to a second late in the fault benchmark, and a heartbeat stored
// meanwhile would be a newer revision. Judged only once this node's own
// heartbeats have been taken for a whole TTL, and only by a bucket that
// holds this node's own entry. While NATS cannot answer, members are kept
// as they were.
std::map<std::string, json> ClusterNode::Impl::read_members() {
  const int64_t now = now_ms();
  recheck_gone(now);
  std::map<std::string, Member> quiet;  // id -> as this node last saw it
  {
    std::lock_guard lock(members_mu);
    for (const auto& [id, m] : members) {
      if (now - m.seen_ms > opts.heartbeat_ms + kTickMs) quiet.emplace(id, Member{json(), m.seen_ms, m.revision});
    }
  }
  std::optional<bool> own_entry_held;  // asked once, when a member looks dead
  for (const auto& [id, seen] : quiet) {
    auto e = nodes_kv->get(id);
    if (!e) continue;  // NATS cannot answer: kept
    std::string why;
    if (e->has_value()) {
      const uint64_t rev = (**e).revision;
      on_member_entry(**e);
      if (rev != seen.revision || now - seen.seen_ms < opts.node_ttl_ms) continue;
      why = "no heartbeat stored for " + std::to_string(now - seen.seen_ms) + " ms (the node TTL is " +
            std::to_string(opts.node_ttl_ms) + " ms)";
    } else {
      why = "its key expired, " + std::to_string(now - seen.seen_ms) + " ms after " + opts.node_id +
            " last heard from it";
    }
    // Judged only while the bucket takes heartbeats: this node's own have
    // been taken for a whole TTL, the last one lately. Otherwise (the
    // bucket's leader paused, this node's heartbeats held up) the
    // member's may have failed alike, and its key expired unrefreshed.
    const int64_t ok_since = heartbeats_ok_since.load();
    if (ok_since == 0 || now - ok_since < opts.node_ttl_ms ||
        now - heartbeat_ok_at.load() > 2 * opts.heartbeat_ms + kTickMs) {
      continue;
    }
    // And only by a bucket that holds this node's own entry, which those
    // heartbeats keep: one that does not lags behind them (a server back
    // from a pause longer than the TTL has expired every key it held).
    if (!own_entry_held) {
      auto own = nodes_kv->get(opts.node_id);
      own_entry_held = own && own->has_value();
    }
    if (!*own_entry_held) continue;
    std::lock_guard lock(members_mu);
    auto it = members.find(id);
    if (it != members.end() && it->second.revision == seen.revision) {
      log::info("cluster: member " + id + " is gone: " + why);
      members.erase(it);
      if (gone.size() < kGoneKeptAtMost) gone[id] = Gone{now, seen.revision};
    }
  }
  std::map<std::string, json> out;
  std::lock_guard lock(members_mu);
  for (const auto& [id, m] : members) out[id] = m.info;
  return out;
}

// Members silent for cluster.failover_after, before their TTL (failover.hpp).
std::set<std::string> ClusterNode::Impl::failed_over() {
  std::map<std::string, cluster::Heard> heard;
  {
    std::lock_guard lock(members_mu);
    for (const auto& [id, m] : members) heard[id] = {m.seen_ms, m.revision};
  }
  auto out = cluster::failed_over(heard, opts.node_id, now_ms(), opts.failover_after_ms);
  for (const auto& id : out) {
    if (!failed_over_before.count(id)) log::warn("cluster: " + id + " silent for cluster.failover_after; its shards move");
  }
  failed_over_before = out;
  return out;
}

}  // namespace aether
