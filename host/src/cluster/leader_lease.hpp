// The cluster's leader lease: one key ("leader") in a bucket whose TTL is
// the node TTL. A node takes the lease by creating the key, keeps it by
// updating it at the revision it wrote last (each campaign, well within the
// TTL), and loses it when that update fails: another node took the key
// after it expired, or NATS could not confirm the write. A key that has
// kept one revision for a whole TTL by a follower's clock is taken by an
// update at that revision, without waiting for nats-server to remove it
// (its expiry timer can run late): the holder did not renew it for a TTL,
// and if it renews meanwhile, the revision changed and the update fails.
// Nothing else decides who leads.
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
  // `ttl_ms`: the bucket's TTL (0: a lease is taken only once its key is gone).
  LeaderLease(KvBucket& bucket, std::string node_id, int64_t ttl_ms = 0)
      : bucket_(bucket), id_(std::move(node_id)), ttl_ms_(ttl_ms) {}

  // Renews the lease held; otherwise takes it when it is free and `may_take`
  // (a leaving node does not), or reads who holds it.
  LeaseTurn campaign(bool may_take);

  // Gives the lease up (a node that leaves): the key is deleted when held.
  void release();

  bool held() const { return held_; }

 private:
  KvBucket& bucket_;
  std::string id_;
  const int64_t ttl_ms_;
  uint64_t revision_ = 0;
  bool held_ = false;
  // The holder's key as this follower last read it, and since when (steady ms).
  uint64_t seen_revision_ = 0;
  int64_t seen_since_ms_ = 0;
};

}  // namespace aether::cluster
