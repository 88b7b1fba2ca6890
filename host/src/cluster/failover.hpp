// Failover before the node TTL (cluster.failover_after): which members the
// leader treats as dead while their membership keys have not expired yet.
// Safe because placement is not what keeps a second writer out: the
// store's expected-version check is (DESIGN.md); a member taken for dead
// that was only stalled serves its old shards until it sees the new map,
// and its commits to actors the new owner has written are refused.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

namespace aether::cluster {

// A member's last heartbeat as this node saw it arrive.
struct Heard {
  int64_t at_ms = 0;       // local clock, when its current revision arrived
  uint64_t revision = 0;   // of its key in the members bucket
};

// The members not heard from for `failover_after_ms` or longer. Judged
// only while this node's own heartbeats arrive (`self` heard within
// `failover_after_ms`): a node cut off from NATS hears nobody and must not
// take every shard away. Empty when failover_after_ms <= 0 (off: the TTL
// decides).
std::set<std::string> failed_over(const std::map<std::string, Heard>& members, const std::string& self,
                                  int64_t now_ms, int64_t failover_after_ms);

}  // namespace aether::cluster
