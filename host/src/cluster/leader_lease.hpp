// The cluster's leader lease: one key ("leader") in a bucket whose TTL is
// the node TTL. A node takes the lease by creating the key, keeps it by
// updating it at the revision it wrote last (each campaign, well within the
// TTL), and loses it when that update fails: another node took the key
// after it expired, or NATS could not confirm the write. Nothing else
// decides who leads.
#pragma once

#include <string>

#include "cluster/kv_bucket.hpp"

namespace aether::cluster {

// What one campaign step found.
struct LeaseTurn {
  enum Kind {
    kHeld,      // this node held the lease and renewed it
    kTaken,     // this node took the lease now
    kLost,      // this node held the lease and could not renew it (`error`)
    kFollower,  // another node leads (`leader`; "" when unknown or not asked)
  };
  Kind kind = kFollower;
  std::string leader;
  std::string error;
};

// Not thread-safe: one campaigning thread.
class LeaderLease {
 public:
  // REQUIRES: `bucket` outlives the lease.
  LeaderLease(KvBucket& bucket, std::string node_id) : bucket_(bucket), id_(std::move(node_id)) {}

  // Renews the lease held; otherwise takes it when it is free and `may_take`
  // (a leaving node does not), or reads who holds it.
  LeaseTurn campaign(bool may_take);

  // Gives the lease up (a node that leaves): the key is deleted when held.
  void release();

  bool held() const { return held_; }

 private:
  KvBucket& bucket_;
  std::string id_;
  uint64_t revision_ = 0;
  bool held_ = false;
};

}  // namespace aether::cluster
