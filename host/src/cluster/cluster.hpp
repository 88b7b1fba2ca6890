// The cluster module: membership, leader lease, shard map, handoff and
// command routing over NATS JetStream (docs/operations.md).
//
// State lives in three JetStream key-value buckets (prefix configurable):
//   <prefix>_NODES   one key per live node, refreshed every heartbeat; the
//                    bucket's max age is the node TTL, so a dead node's key
//                    disappears by itself
//   <prefix>_LEADER  key "leader": the lease, created by whoever finds it
//                    absent, renewed by its holder with a revision check;
//                    max age = node TTL
//   <prefix>_MAP     key "map": the shard map the leader publishes (epoch,
//                    owners, migrations in flight); keys "handoff.<shard>":
//                    a source node's "released" for a migration
//
// A command reaching a node is run here when this node serves its shard,
// waits (bounded) while the shard is moving, or is forwarded to the owner on
// "aether._cluster.fwd.<node>.<ns>.<type>.<id>" with the same JSON as HTTP
// and the route trail (route_trail.hpp): never in a circle, and within the
// command's deadline or with an error saying it was not run.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cluster/route_trail.hpp"
#include "core/status.hpp"
#include "runtime/runtime.hpp"

namespace aether {

class NatsConnection;

struct ClusterOptions {
  std::string node_id = "node-1";
  std::string bucket_prefix = "AETHER_CLUSTER";
  uint32_t shards = 1024;             // fixed for the cluster's life
  uint32_t vnodes = 64;               // ring points per node
  int64_t node_ttl_ms = 3000;         // a node silent this long is dead; also the leader lease
  int64_t heartbeat_ms = 1000;        // how often a node refreshes its key (< node_ttl_ms)
  int64_t failover_after_ms = 0;      // > 0: a member silent this long loses its shards before its TTL
  uint32_t max_moves = 64;            // shards migrating at once (rebalance pacing)
  int64_t handoff_timeout_ms = 10000;  // a migration not released by then is re-planned
  int64_t route_wait_ms = 5000;       // longest wait of a command for a moving shard
  int64_t forward_timeout_ms = 5000;  // a forwarded command's reply deadline
  int replicas = 1;                   // of the buckets
  std::vector<std::string> plugins;   // "name@version", advertised in the node info
};

// What a command came back with: this node's result, or the owner's reply
// (HTTP status and JSON body, exactly as it sent them).
struct RoutedResult {
  bool remote = false;
  CommandResult local;
  int http_status = 0;
  std::string body;
  uint64_t redirect_epoch = 0;  // > 0: bounced back to the sender, not run
};
using RoutedCallback = std::function<void(RoutedResult)>;

struct ClusterNodeInfo {
  std::string id;
  std::string ingress;  // the subject prefix forwarded commands go to
  std::vector<std::string> plugins;
  uint64_t active_actors = 0;
  uint64_t commands = 0;
  bool leaving = false;
  uint32_t shards = 0;  // in the current map
};

struct ClusterMigration {
  uint32_t shard = 0;
  std::string from;
  std::string to;
  // In flight: planned, draining (the source holds new commands and lets
  // running ones finish), snapshotting, released (the destination serves).
  // Finished: active (the destination owns it) or failed (re-planned).
  std::string state;
  uint64_t planned_epoch = 0;
};

struct ClusterStatus {
  std::string node_id;
  std::string leader;
  uint64_t epoch = 0;
  uint32_t shard_count = 0;
  std::vector<ClusterNodeInfo> nodes;
  std::vector<ClusterMigration> migrations;  // in flight
  std::vector<ClusterMigration> recent;      // the last finished ones, as this node saw them
  uint32_t unowned_shards = 0;
  uint64_t migrations_done = 0;    // by this node as leader
  uint64_t migrations_failed = 0;  // re-planned after a stall or a dead destination
  uint64_t forwarded = 0;          // commands this node forwarded
  uint64_t retried = 0;            // commands run again here after a passing store failure
};

class ClusterNode {
 public:
  // Creates the buckets if needed, announces this node and starts its
  // heartbeat, leader campaign and map watch.
  // REQUIRES: connection and runtime outlive the node.
  static Result<std::unique_ptr<ClusterNode>> start(const ClusterOptions& options, NatsConnection& connection,
                                                    Runtime& runtime);
  ~ClusterNode();

  // Runs `command` where its shard lives. `trail`: what the node that
  // forwarded it here said (empty for a command that entered here). A
  // result with `redirect_epoch` set was not run: the sender routes it again
  // after refreshing its map (route_trail.hpp).
  void route(Command command, RouteTrail trail, RoutedCallback done);

  // Graceful leave: marks this node leaving and waits (up to `timeout_ms`)
  // until the leader has moved every shard it owned elsewhere. Commands keep
  // being routed (forwarded to the new owners) until stop().
  Status leave(int64_t timeout_ms);

  // Stops the background threads; after leave() also removes this node from
  // the membership (and gives up the leader lease). Without leave() the
  // node's key stays until its TTL runs out, as after a crash. Idempotent.
  void stop();

  ClusterStatus status() const;

  // This node's figures from memory, cheap enough for every /metrics scrape.
  struct Figures {
    uint64_t epoch = 0;
    uint32_t shards_owned = 0;
    uint32_t migrations_in_flight = 0;
    bool leader = false;
    uint64_t forwarded = 0;
    uint64_t retried = 0;
    uint64_t migrations_done = 0;
    uint64_t migrations_failed = 0;
  };
  Figures figures() const;
  // The status as JSON (GET /v1/cluster).
  std::string status_json() const;

  // True when this node runs the commands of actor (type, id) now; a read
  // elsewhere should load the actor from the store instead of a cache.
  bool serves(const std::string& type, const std::string& id) const;

  static std::string forward_subject(const std::string& node_id);  // "aether._cluster.fwd.<node>"

  struct Impl;

 private:
  explicit ClusterNode(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace aether
