// Private to host/src/cluster: the state of a ClusterNode and the helpers
// its parts share. The parts live in their own files by concern:
// node.cpp (start, stop, control loop, the public ClusterNode methods),
// node_members.cpp (membership and the leader lease), node_leader.cpp (the
// leader round, the shard map as this node sees it, the handoff source
// side), node_routing.cpp (routing and forwarding), node_status.cpp (status
// and its JSON).
#pragma once

#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

#include "cluster/cluster.hpp"
#include "cluster/kv_bucket.hpp"
#include "cluster/leader_lease.hpp"
#include "cluster/shard_map.hpp"
#include "core/guarded.hpp"
#include "nats/connection.hpp"

namespace aether {
namespace cluster_node {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

inline int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
}

constexpr int64_t kTickMs = 50;
constexpr int64_t kRetryPauseMs = 100;  // before a command runs again after a passing failure
constexpr int64_t kAttemptRoundTrips = 3;  // store requests of one attempt, at most (node_routing.cpp)
constexpr size_t kRecentMigrations = 64;

using cluster::decode_map;
using cluster::encode_map;
using cluster::is_released;
using cluster::map_fits;
using cluster::Migration;
using Map = cluster::ShardMap;

// How long a watcher thread waits for a change before it looks at its
// stop flag again.
constexpr int64_t kWatchWaitMs = 200;
constexpr int64_t kGoneKeptMs = 600000;
constexpr size_t kGoneKeptAtMost = 256;

}  // namespace cluster_node

using namespace cluster_node;  // NOLINT: private header of the cluster's own files

struct ClusterNode::Impl {
  ClusterOptions opts;
  NatsConnection& conn;
  Runtime& runtime;
  // The cluster's buckets (cluster/kv_bucket.hpp): members with the node
  // TTL, the leader lease with the node TTL, the shard map and handoffs.
  std::unique_ptr<cluster::KvBucket> nodes_kv;
  std::unique_ptr<cluster::KvBucket> leader_kv;
  std::unique_ptr<cluster::KvBucket> map_kv;
  std::unique_ptr<cluster::KvWatch> map_watch;
  std::unique_ptr<cluster::KvWatch> nodes_watch;
  std::unique_ptr<cluster::LeaderLease> lease;
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
  std::string leader_id;
  std::map<uint32_t, int64_t> planned_at;
  std::set<std::string> failed_over_before;  // leader thread only
  std::atomic<uint64_t> migrations_done{0};
  std::atomic<uint64_t> migrations_failed{0};
  std::atomic<uint64_t> forwarded{0};
  std::atomic<uint64_t> local_commands{0};
  std::atomic<uint64_t> retried_commands{0};
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
  // Members taken for dead -> when, and the last revision of their key
  // then: looked up again once a heartbeat interval for kGoneKeptMs, so
  // that one that comes back (a newer revision) is seen even if the
  // watcher missed its return. Under members_mu.
  struct Gone {
    int64_t at_ms = 0;
    uint64_t revision = 0;
  };
  std::map<std::string, Gone> gone;
  int64_t gone_checked_ms = 0;

  std::thread control;
  std::thread watcher;
  std::thread members_watcher;
  std::atomic<int64_t> last_heartbeat{0};  // also written by leave() on the caller's thread
  // Since when this node's heartbeats have been taken without a failure (0:
  // the last one failed), and when the last one was taken.
  std::atomic<int64_t> heartbeats_ok_since{0}, heartbeat_ok_at{0};
  // The current run of failed heartbeats: since when (0: none), how many,
  // and when it was last logged.
  std::atomic<int64_t> heartbeats_failing_since{0}, heartbeat_warned_at{0};
  std::atomic<uint64_t> heartbeats_failed{0};
  // When the members watcher last delivered this node's own entry (read
  // and written on the members_watcher thread only, after start()).
  int64_t own_entry_seen_ms = 0;

  Impl(const ClusterOptions& o, NatsConnection& c, Runtime& r)
      : opts(o), conn(c), runtime(r), in_flight(o.shards, 0) {}

  ~Impl();

  Status open_bucket(std::unique_ptr<cluster::KvBucket>& out, const std::string& suffix, int64_t max_age_ms);

  Status start();

  void stop();

  // An unavailable result with its precise cause (docs/api.md).
  static RoutedResult failed(const std::string& why, const char* cause, Applied applied) {
    RoutedResult r;
    r.local.status = Status::unavailable(why).with_cause(cause, applied);
    return r;
  }

  // --- membership and leader ------------------------------------------------

  json node_info() const;

  void heartbeat();

  void campaign();

  // A put refreshes a member; a delete (a node that left) removes it.
  void on_member_entry(const cluster::KvEntry& e);

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

  void members_step();

  // The live members. A member not heard from for longer than a heartbeat
  // (and some slack) is looked up in the bucket, from its leader: a key
  // gone (the bucket's TTL) or a key whose revision has not changed for a
  // whole node TTL by this node's clock means dead. While NATS cannot
  // answer, members are kept as they were.
  void recheck_gone(int64_t now);
  std::map<std::string, json> read_members();

  // Members silent for cluster.failover_after, before their TTL (failover.hpp).
  std::set<std::string> failed_over();

  // One leader round: settle migrations, plan new ones (cluster::plan_round),
  // publish on change.
  void lead();

  // --- the map as this node sees it ------------------------------------------

  void install_map(Map m);

  // REQUIRES: mu held.
  void recompute_draining();

  void watch_step();

  // --- handoff (source side) ---------------------------------------------------

  void drain();

  // --- routing ------------------------------------------------------------------

  enum class Route { kLocal, kForward, kWait };

  // REQUIRES: mu held.
  // Where a command for `shard` runs now: here, on `target`, or after a wait.
  Route where_to_run(uint32_t shard, std::string& target) const;

  // `map_fetched`: the command already waited for a map read (a sender knew
  // a newer epoch); it goes on with whatever map this node has now.
  void route(Command c, RouteTrail trail, RoutedCallback done, int64_t deadline, bool map_fetched = false);

  void want_epoch(uint64_t e);
  bool worth_retrying(const Status& s, int64_t deadline) const;
  bool retry_fits(int64_t deadline) const;  // a retry now would still answer by `deadline`

  // The answer to a sender whose command this node would pass to a node it
  // already went through: not run; the sender refreshes its map and routes
  // it again.
  RoutedResult redirect(uint32_t shard, const std::string& target, uint64_t epoch, const RouteTrail& trail);

  void forward(Command c, RouteTrail trail, RoutedCallback done, const std::string& target, int64_t route_deadline, uint64_t epoch);

  std::optional<Forward> take_forward(uint64_t n);

  // Reads the published map (from the bucket's leader) when a sender or a
  // redirect named a newer epoch than this node's: at most once per tick,
  // and once per such request, so that a forged epoch costs one read.
  void refresh_map();

  static void on_reply(natsConnection*, natsSubscription*, natsMsg* msg, void* closure);

  void reply_arrived(natsMsg* msg);

  // Re-routes held commands whose time has come; fails expired forwards.
  void retry_held();

  // --- the control loop ---------------------------------------------------------

  void control_loop();

  // --- status -------------------------------------------------------------------

  ClusterStatus status();

  bool owns_nothing_and_settled();
};

}  // namespace aether
