#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <unordered_map>

#include "cluster/cluster.hpp"
#include "cluster/failover.hpp"
#include "cluster/placement.hpp"
#include "cluster/shard_map.hpp"
#include "core/guarded.hpp"
#include "core/json_limits.hpp"
#include "core/log.hpp"
#include "core/names.hpp"
#include "core/subjects.hpp"
#include "nats/connection.hpp"

namespace aether {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
}

constexpr int64_t kTickMs = 50;
constexpr size_t kRecentMigrations = 64;

using cluster::decode_map;
using cluster::encode_map;
using cluster::is_released;
using cluster::map_fits;
using cluster::Migration;
using Map = cluster::ShardMap;

// The watcher's next entry (or nullptr: initial values done), waiting up to
// 200 ms; after an error other than a timeout (a watcher that cannot
// deliver), a short pause, so that its loop does not spin.
natsStatus next_entry(kvWatcher* w, kvEntry** e) {
  const natsStatus s = kvWatcher_Next(e, w, 200);
  if (s != NATS_OK && s != NATS_TIMEOUT) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  return s;
}

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

std::string ClusterNode::forward_subject(const std::string& node_id) { return subjects::forward_prefix(node_id); }

struct ClusterNode::Impl {
  ClusterOptions opts;
  NatsConnection& conn;
  Runtime& runtime;
  kvStore* nodes_kv = nullptr;
  kvStore* leader_kv = nullptr;
  kvStore* map_kv = nullptr;
  kvWatcher* map_watch = nullptr;
  kvWatcher* nodes_watch = nullptr;
  natsSubscription* reply_sub = nullptr;
  std::string reply_prefix;

  mutable std::mutex mu;
  std::condition_variable changed;  // map, handoffs, in-flight counts, stop
  bool stopping = false;
  bool have_map = false;
  Map map;
  std::map<uint32_t, uint64_t> released;  // shard -> planned_epoch released by its source
  std::vector<uint32_t> in_flight;        // local commands per shard
  std::set<uint32_t> draining;            // shards this node is releasing
  std::set<uint32_t> snapshotting;        // of those, the ones being snapshotted now
  std::deque<ClusterMigration> recent;    // finished migrations, newest last (bounded)
  std::atomic<bool> leaving{false};
  std::atomic<bool> is_leader{false};
  uint64_t leader_rev = 0;
  std::string leader_id;
  std::map<uint32_t, int64_t> planned_at;
  std::set<std::string> failed_over_before;  // leader thread only
  std::atomic<uint64_t> migrations_done{0};
  std::atomic<uint64_t> migrations_failed{0};
  std::atomic<uint64_t> forwarded{0};
  std::atomic<uint64_t> local_commands{0};
  // A map epoch another node knew (a forward's trail, a redirect): the
  // control loop reads the map once when this node's is older.
  std::atomic<uint64_t> wanted_epoch{0};

  struct Held {
    Command command;
    RouteTrail trail;
    RoutedCallback done;
    int64_t deadline;
    int64_t not_before = 0;
    bool map_fetched = false;  // held once already for a map read
  };
  std::deque<Held> held;

  struct Forward {
    RoutedCallback done;
    int64_t deadline;
    Command command;
    RouteTrail trail;  // as it reached this node
    int64_t route_deadline;
  };
  std::mutex fwd_mu;
  std::unordered_map<uint64_t, Forward> forwards;
  uint64_t next_forward = 0;

  // Members as the watcher of the nodes bucket saw them: each entry with the
  // time (local clock) its last heartbeat arrived. An entry that went quiet
  // is checked against the bucket, whose TTL is what decides a node is dead.
  struct Member {
    json info;
    int64_t seen_ms = 0;  // when its current revision arrived
    uint64_t revision = 0;
  };
  std::mutex members_mu;
  std::map<std::string, Member> members;

  std::thread control;
  std::thread watcher;
  std::thread members_watcher;
  std::atomic<int64_t> last_heartbeat{0};  // also written by leave() on the caller's thread

  Impl(const ClusterOptions& o, NatsConnection& c, Runtime& r)
      : opts(o), conn(c), runtime(r), in_flight(o.shards, 0) {}

  ~Impl() {
    if (map_watch) kvWatcher_Destroy(map_watch);
    if (nodes_watch) kvWatcher_Destroy(nodes_watch);
    if (reply_sub) natsSubscription_Destroy(reply_sub);
    if (nodes_kv) kvStore_Destroy(nodes_kv);
    if (leader_kv) kvStore_Destroy(leader_kv);
    if (map_kv) kvStore_Destroy(map_kv);
  }

  Status open_bucket(kvStore** out, const std::string& suffix, int64_t max_age_ms) {
    KvBucketOptions o;
    o.name = opts.bucket_prefix + "_" + suffix;
    o.max_age_ms = max_age_ms;
    o.replicas = opts.replicas;
    auto kv = open_kv_bucket(conn, o, "cluster");
    if (!kv) return kv.status();
    *out = *kv;
    return Status::ok();
  }

  Status start() {
    if (Status s = open_bucket(&nodes_kv, "NODES", opts.node_ttl_ms); !s) return s;
    if (Status s = open_bucket(&leader_kv, "LEADER", opts.node_ttl_ms); !s) return s;
    if (Status s = open_bucket(&map_kv, "MAP", 0); !s) return s;
    // Every node of a cluster must place actors on the same shards.
    kvEntry* e = nullptr;
    if (kvStore_Get(&e, map_kv, "map") == NATS_OK) {
      auto m = decode_map(kvEntry_ValueString(e));
      kvEntry_Destroy(e);
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
    kvWatchOptions wo;
    kvWatchOptions_Init(&wo);
    s = kvStore_WatchAll(&map_watch, map_kv, &wo);
    if (s != NATS_OK) return Status::unavailable(nats_error(s, "cluster: watching the shard map"));
    s = kvStore_WatchAll(&nodes_watch, nodes_kv, &wo);
    if (s != NATS_OK) return Status::unavailable(nats_error(s, "cluster: watching the members"));
    // The members present now, before this node can lead: a leader that
    // missed one would take its shards away.
    const int64_t until = now_ms() + std::max<int64_t>(2000, 4 * conn.options().request_timeout_ms);
    for (bool initial_done = false; !initial_done;) {
      kvEntry* e = nullptr;
      natsStatus ns = kvWatcher_Next(&e, nodes_watch, 200);
      if (ns == NATS_OK && e == nullptr) initial_done = true;
      else if (ns == NATS_OK) on_member_entry(e);
      else if (now_ms() >= until) return Status::unavailable(nats_error(ns, "cluster: reading the members"));
    }
    heartbeat();
    watcher = std::thread([this] { guarded_loop("cluster: shard map watcher", [this] { watch_step(); }); });
    members_watcher = std::thread([this] { guarded_loop("cluster: member watcher", [this] { members_step(); }); });
    control = std::thread([this] { control_loop(); });
    return Status::ok();
  }

  void stop() {
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

  // An unavailable result with its precise cause (docs/api.md).
  static RoutedResult failed(const std::string& why, const char* cause, Applied applied) {
    RoutedResult r;
    r.local.status = Status::unavailable(why).with_cause(cause, applied);
    return r;
  }

  // --- membership and leader ------------------------------------------------

  json node_info() const {
    const auto st = runtime.stats();
    return json{{"id", opts.node_id},
                {"ingress", ClusterNode::forward_subject(opts.node_id)},
                {"plugins", opts.plugins},
                {"load", {{"active_actors", st.active_actors}, {"commands", local_commands.load()}}},
                {"leaving", leaving.load()}};
  }

  void heartbeat() {
    const std::string v = node_info().dump();
    if (natsStatus s = kvStore_PutString(nullptr, nodes_kv, opts.node_id.c_str(), v.c_str()); s != NATS_OK) {
      log::warn(nats_error(s, "cluster: heartbeat"));
    }
    last_heartbeat.store(now_ms());
  }

  void campaign() {
    if (is_leader.load()) {
      uint64_t rev = 0;
      natsStatus s = kvStore_UpdateString(&rev, leader_kv, "leader", opts.node_id.c_str(), leader_rev);
      if (s == NATS_OK) {
        leader_rev = rev;
      } else {
        log::warn(nats_error(s, "cluster: leader lease lost by " + opts.node_id));
        is_leader.store(false);
      }
      return;
    }
    if (leaving.load()) return;
    uint64_t rev = 0;
    if (kvStore_CreateString(&rev, leader_kv, "leader", opts.node_id.c_str()) == NATS_OK) {
      leader_rev = rev;
      is_leader.store(true);
      std::lock_guard lock(mu);
      leader_id = opts.node_id;
      planned_at.clear();
      log::info("cluster: " + opts.node_id + " is the leader");
      return;
    }
    kvEntry* e = nullptr;
    if (kvStore_Get(&e, leader_kv, "leader") == NATS_OK) {
      std::lock_guard lock(mu);
      leader_id = kvEntry_ValueString(e);
      kvEntry_Destroy(e);
    }
  }

  // A put refreshes a member; a delete (a node that left) removes it.
  void on_member_entry(kvEntry* e) {
    const std::string key = kvEntry_Key(e);
    const bool put = kvEntry_Operation(e) == kvOp_Put;
    const uint64_t rev = kvEntry_Revision(e);
    const char* text = put ? kvEntry_ValueString(e) : "";
    json info = put && check_json_text(text, 8, "member") ? json::parse(text, nullptr, false) : json();
    kvEntry_Destroy(e);
    std::lock_guard lock(members_mu);
    auto it = members.find(key);
    if (!put) members.erase(key);
    else if (it != members.end() && it->second.revision == rev) return;  // read again, not a new heartbeat
    else if (member_info_ok(info)) members[key] = Member{std::move(info), now_ms(), rev};
    else log::warn("cluster: ignoring an undecodable entry for member " + quote_for_message(key));
  }

  // Runs `step` until the node stops; a step that fails unexpectedly is
  // logged and the loop goes on.
  template <class F>
  void guarded_loop(const char* where, F step) {
    while (true) {
      {
        std::lock_guard lock(mu);
        if (stopping) return;
      }
      if (!run_guarded(where, step)) std::this_thread::sleep_for(std::chrono::milliseconds(kTickMs));
    }
  }

  void members_step() {
    kvEntry* e = nullptr;
    if (next_entry(nodes_watch, &e) == NATS_OK && e != nullptr) on_member_entry(e);
  }

  // The live members. The bucket's TTL removes a silent node's entry without
  // a delete marker, so a member not heard from for longer than a heartbeat
  // (and some slack) is looked up: gone from the bucket means dead. While
  // NATS cannot answer, members are kept as they were.
  std::map<std::string, json> read_members() {
    std::vector<std::string> quiet;
    const int64_t now = now_ms();
    {
      std::lock_guard lock(members_mu);
      for (const auto& [id, m] : members) {
        if (now - m.seen_ms > opts.heartbeat_ms + kTickMs) quiet.push_back(id);
      }
    }
    for (const auto& id : quiet) {
      kvEntry* e = nullptr;
      const natsStatus s = kvStore_Get(&e, nodes_kv, id.c_str());
      if (s == NATS_OK) {
        on_member_entry(e);
      } else if (s == NATS_NOT_FOUND) {
        std::lock_guard lock(members_mu);
        auto it = members.find(id);
        if (it != members.end() && it->second.seen_ms <= now) members.erase(it);
      }
    }
    std::map<std::string, json> out;
    std::lock_guard lock(members_mu);
    for (const auto& [id, m] : members) out[id] = m.info;
    return out;
  }

  // Members silent for cluster.failover_after, before their TTL (failover.hpp).
  std::set<std::string> failed_over() {
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

  // One leader round: settle migrations, plan new ones (cluster::plan_round),
  // publish on change.
  void lead() {
    std::map<std::string, bool> members;  // live id -> leaving
    for (const auto& [id, info] : read_members()) members[id] = info.value("leaving", false);
    for (const auto& id : failed_over()) members.erase(id);
    cluster::Released rel;
    {
      std::lock_guard lock(mu);
      rel = released;
    }
    // The published map with its revision (0: none yet), read afresh so that
    // the update below is checked against it.
    Map m;
    uint64_t rev = 0;
    kvEntry* e = nullptr;
    natsStatus gs = kvStore_Get(&e, map_kv, "map");
    if (gs == NATS_OK) {
      auto fresh = decode_map(kvEntry_ValueString(e));
      rev = kvEntry_Revision(e);
      kvEntry_Destroy(e);
      if (!fresh || !map_fits(*fresh, opts.shards)) {
        log::error("cluster: the published shard map is undecodable; not rebalancing");
        return;
      }
      m = std::move(*fresh);
    } else if (gs != NATS_NOT_FOUND) {
      return;  // NATS away; next round
    }
    const auto round = cluster::plan_round(m, members, rel, planned_at, now_ms(),
                                           {opts.shards, opts.vnodes, opts.max_moves, opts.handoff_timeout_ms});
    for (const auto& w : round.warnings) log::warn("cluster: " + w);
    migrations_done += round.migrations_done;
    migrations_failed += round.migrations_failed;
    if (!round.changed) return;
    const std::string text = encode_map(m);
    uint64_t new_rev = 0;
    natsStatus ps = rev == 0 ? kvStore_CreateString(&new_rev, map_kv, "map", text.c_str())
                             : kvStore_UpdateString(&new_rev, map_kv, "map", text.c_str(), rev);
    if (ps != NATS_OK) {
      log::warn(nats_error(ps, "cluster: publishing shard map epoch " + std::to_string(m.epoch)));
      return;
    }
    install_map(std::move(m));
  }

  // --- the map as this node sees it ------------------------------------------

  void install_map(Map m) {
    {
      std::lock_guard lock(mu);
      if (have_map && m.epoch < map.epoch) return;
      if (have_map) {
        for (const auto& [s, mg] : map.migrations) {
          if (m.migrations.count(s) && m.migrations.at(s).planned_epoch == mg.planned_epoch) continue;
          const bool done = s < m.owners.size() && m.owners[s] == mg.to;
          recent.push_back({s, mg.from, mg.to, done ? "active" : "failed", mg.planned_epoch});
          if (recent.size() > kRecentMigrations) recent.pop_front();
        }
      }
      map = std::move(m);
      have_map = true;
      recompute_draining();
    }
    changed.notify_all();
  }

  // REQUIRES: mu held.
  void recompute_draining() {
    std::set<uint32_t> next;
    for (const auto& [s, mg] : map.migrations) {
      if (mg.from == opts.node_id && !is_released(released, mg)) next.insert(s);
    }
    draining.swap(next);
  }

  void watch_step() {
    kvEntry* e = nullptr;
    natsStatus s = next_entry(map_watch, &e);
    if (s != NATS_OK || e == nullptr) return;
    const std::string key = kvEntry_Key(e);
    const bool put = kvEntry_Operation(e) == kvOp_Put;
    const std::string value = put ? kvEntry_ValueString(e) : "";
    const uint64_t rev = kvEntry_Revision(e);
    kvEntry_Destroy(e);
    if (!put) return;
    if (key == "map") {
      if (auto m = decode_map(value); m && map_fits(*m, opts.shards)) install_map(std::move(*m));
      else log::error("cluster: undecodable shard map (revision " + std::to_string(rev) + ")");
    } else if (key.rfind("handoff.", 0) == 0) {
      json j = check_json_text(value, 8, "handoff") ? json::parse(value, nullptr, false) : json();
      const auto epoch = j.is_object() ? j.find("planned_epoch") : j.end();
      if (epoch == j.end() || !epoch->is_number_unsigned()) return;
      const uint32_t shard = static_cast<uint32_t>(std::strtoul(key.c_str() + 8, nullptr, 10));
      {
        std::lock_guard lock(mu);
        released[shard] = epoch->get<uint64_t>();
        recompute_draining();
      }
      changed.notify_all();
    }
  }

  // --- handoff (source side) ---------------------------------------------------

  void drain() {
    std::vector<std::pair<uint32_t, Migration>> ready;
    {
      std::lock_guard lock(mu);
      for (uint32_t s : draining) {
        if (in_flight[s] != 0) continue;
        auto it = map.migrations.find(s);
        if (it != map.migrations.end()) ready.push_back({s, it->second});
      }
    }
    if (ready.empty()) return;
    std::set<uint32_t> shards;
    for (const auto& [s, _] : ready) shards.insert(s);
    {
      std::lock_guard lock(mu);
      snapshotting = shards;
    }
    const uint32_t count = opts.shards;
    const size_t busy = runtime.release([&](const ActorKey& k) {
      return shards.count(cluster::shard_of(k.type, k.id, count)) > 0;
    });
    {
      std::lock_guard lock(mu);
      snapshotting.clear();
    }
    if (busy > 0) return;  // a command is still inside the runtime; next tick
    for (const auto& [s, mg] : ready) {
      const std::string v = json{{"planned_epoch", mg.planned_epoch}, {"from", mg.from}, {"to", mg.to}}.dump();
      const std::string key = "handoff." + std::to_string(s);
      if (natsStatus st = kvStore_PutString(nullptr, map_kv, key.c_str(), v.c_str()); st != NATS_OK) {
        log::warn(nats_error(st, "cluster: releasing shard " + std::to_string(s)));
        continue;
      }
      std::lock_guard lock(mu);
      released[s] = mg.planned_epoch;
      recompute_draining();
    }
    changed.notify_all();
  }

  // --- routing ------------------------------------------------------------------

  enum class Route { kLocal, kForward, kWait };

  // REQUIRES: mu held.
  // Where a command for `shard` runs now: here, on `target`, or after a wait.
  Route where_to_run(uint32_t shard, std::string& target) const {
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
  void route(Command c, RouteTrail trail, RoutedCallback done, int64_t deadline, bool map_fetched = false) {
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
    runtime.send(std::move(c), [this, shard, done = std::move(done)](CommandResult res) {
      {
        std::lock_guard lock(mu);
        --in_flight[shard];
      }
      changed.notify_all();
      RoutedResult rr;
      rr.local = std::move(res);
      done(std::move(rr));
    });
  }

  void want_epoch(uint64_t e) {
    uint64_t cur = wanted_epoch.load();
    while (e > cur && !wanted_epoch.compare_exchange_weak(cur, e)) {
    }
  }

  // The answer to a sender whose command this node would pass to a node it
  // already went through: not run; the sender refreshes its map and routes
  // it again.
  RoutedResult redirect(uint32_t shard, const std::string& target, uint64_t epoch, const RouteTrail& trail) {
    RoutedResult r = failed("shard " + std::to_string(shard) + " is owned by " + target + " in shard map epoch " +
                                std::to_string(epoch) + " of node " + opts.node_id + ", which the command already " +
                                "passed (path " + trail.path_text() + "); the command was not run",
                            "owner_unreachable", Applied::kNo);
    r.redirect_epoch = std::max<uint64_t>(epoch, 1);
    return r;
  }

  void forward(Command c, RouteTrail trail, RoutedCallback done, const std::string& target, int64_t route_deadline,
               uint64_t epoch) {
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

  std::optional<Forward> take_forward(uint64_t n) {
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
  void refresh_map() {
    const uint64_t wanted = wanted_epoch.exchange(0);
    {
      std::lock_guard lock(mu);
      if (wanted <= map.epoch) return;
    }
    std::string text;
    uint64_t rev = 0;
    if (kv_get_leader(conn, opts.bucket_prefix + "_MAP", "map", text, rev) != NATS_OK) return;
    if (auto m = decode_map(text); m && map_fits(*m, opts.shards)) install_map(std::move(*m));
  }

  static void on_reply(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    run_guarded("cluster: forwarded reply", [&] { static_cast<Impl*>(closure)->reply_arrived(msg); });
  }

  void reply_arrived(natsMsg* msg) {
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
  void retry_held() {
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

  // --- the control loop ---------------------------------------------------------

  void control_loop() {
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

  // --- status -------------------------------------------------------------------

  ClusterStatus status() {
    auto live = read_members();
    ClusterStatus st;
    std::lock_guard lock(mu);
    st.node_id = opts.node_id;
    st.leader = leader_id;
    st.epoch = map.epoch;
    st.shard_count = opts.shards;
    std::map<std::string, uint32_t> per;
    for (const auto& o : map.owners) {
      if (o.empty()) ++st.unowned_shards;
      else ++per[o];
    }
    if (map.owners.empty()) st.unowned_shards = opts.shards;
    for (const auto& [id, info] : live) {
      ClusterNodeInfo n;
      n.id = id;
      n.ingress = info.value("ingress", "");
      n.plugins = info.value("plugins", std::vector<std::string>{});
      if (info.contains("load") && info["load"].is_object()) {
        n.active_actors = info["load"].value("active_actors", uint64_t{0});
        n.commands = info["load"].value("commands", uint64_t{0});
      }
      n.leaving = info.value("leaving", false);
      n.shards = per[id];
      st.nodes.push_back(std::move(n));
    }
    for (const auto& [s, mg] : map.migrations) {
      const bool rel = is_released(released, mg);
      const bool drn = draining.count(s) > 0;
      const bool snap = snapshotting.count(s) > 0;
      st.migrations.push_back(
          {s, mg.from, mg.to, rel ? "released" : snap ? "snapshotting" : drn ? "draining" : "planned", mg.planned_epoch});
    }
    st.recent.assign(recent.begin(), recent.end());
    st.migrations_done = migrations_done.load();
    st.migrations_failed = migrations_failed.load();
    st.forwarded = forwarded.load();
    return st;
  }

  bool owns_nothing_and_settled() {
    std::lock_guard lock(mu);
    if (!have_map) return true;
    for (const auto& o : map.owners) {
      if (o == opts.node_id) return false;
    }
    for (const auto& [s, mg] : map.migrations) {
      if (mg.from == opts.node_id || mg.to == opts.node_id) return false;
    }
    return true;
  }
};

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
    kvStore_Delete(impl_->nodes_kv, impl_->opts.node_id.c_str());
    if (impl_->is_leader.load()) kvStore_Delete(impl_->leader_kv, "leader");
    log::info("cluster: node " + impl_->opts.node_id + " left");
  }
}

bool ClusterNode::serves(const std::string& type, const std::string& id) const {
  std::string target;
  std::lock_guard lock(impl_->mu);
  return impl_->where_to_run(cluster::shard_of(type, id, impl_->opts.shards), target) == Impl::Route::kLocal;
}

ClusterStatus ClusterNode::status() const { return impl_->status(); }

ClusterNode::Figures ClusterNode::figures() const {
  Figures f;
  std::lock_guard lock(impl_->mu);
  f.epoch = impl_->map.epoch;
  for (const auto& o : impl_->map.owners) f.shards_owned += o == impl_->opts.node_id;
  f.migrations_in_flight = static_cast<uint32_t>(impl_->map.migrations.size());
  f.leader = impl_->is_leader.load();
  f.forwarded = impl_->forwarded.load();
  f.migrations_done = impl_->migrations_done.load();
  f.migrations_failed = impl_->migrations_failed.load();
  return f;
}

std::string ClusterNode::status_json() const {
  const ClusterStatus st = impl_->status();
  json nodes = json::array();
  for (const auto& n : st.nodes) {
    nodes.push_back({{"id", n.id},
                     {"ingress", n.ingress},
                     {"plugins", n.plugins},
                     {"active_actors", n.active_actors},
                     {"commands", n.commands},
                     {"leaving", n.leaving},
                     {"shards", n.shards},
                     {"leader", n.id == st.leader}});
  }
  auto list = [](const std::vector<ClusterMigration>& v) {
    json out = json::array();
    for (const auto& m : v) {
      out.push_back({{"shard", m.shard}, {"from", m.from}, {"to", m.to}, {"state", m.state},
                     {"planned_epoch", m.planned_epoch}});
    }
    return out;
  };
  const json migs = list(st.migrations);
  json owners;  // the owner of every shard, for a shard map view
  {
    std::lock_guard lock(impl_->mu);
    owners = impl_->map.owners;
  }
  return json{{"mode", "cluster"},
              {"owners", owners},
              {"node", st.node_id},
              {"leader", st.leader},
              {"epoch", st.epoch},
              {"shards", st.shard_count},
              {"unowned_shards", st.unowned_shards},
              {"nodes", nodes},
              {"migrations", migs},
              {"recent_migrations", list(st.recent)},
              {"migrations_done", st.migrations_done},
              {"migrations_failed", st.migrations_failed},
              {"forwarded", st.forwarded}}
      .dump();
}

}  // namespace aether
