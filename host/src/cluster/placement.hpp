// The cluster module's placement: which shard an actor belongs to, which node
// owns a shard, and how the shard map changes when nodes join or leave.
//
// Everything here is a pure function of its inputs, so every process that
// computes it gets the same answer (docs/operations.md documents the hash).
//
//   shard_of(type, id)  = mix64(fnv1a64(type + '\0' + id)) mod shard_count
//   ring point of a key = mix64(fnv1a64(key))
//
// fnv1a64 is 64-bit FNV-1a over the bytes; mix64 is the splitmix64 finalizer.
//
// Shard -> node is consistent hashing with virtual nodes and bounded loads:
// every node puts `vnodes` points on a ring; a shard prefers the nodes met
// walking the ring clockwise from its own point, and goes to the first one
// that has room. Room is bounded so that every node ends with floor(S/N) or
// ceil(S/N) shards. rebalance() starts from the current map: a live owner
// keeps its shards up to its bound, so a join or leave moves (almost) only
// the shards that must move.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace aether::cluster {

uint64_t fnv1a64(std::string_view bytes);
uint64_t mix64(uint64_t x);

// The shard of an actor; shard_count > 0.
uint32_t shard_of(std::string_view type, std::string_view id, uint32_t shard_count);

struct ShardMove {
  uint32_t shard = 0;
  std::string from;  // "" when the shard had no live owner
  std::string to;
};

struct RebalancePlan {
  std::vector<std::string> owners;  // the new owner of every shard
  std::vector<ShardMove> moves;     // shards whose owner changes, by shard
};

// From the current owners (any size; "" or a node not in `live` = orphaned)
// and the live nodes, the new owners and the moves. `live` may be in any
// order and hold duplicates; with no live node every shard is unowned.
RebalancePlan rebalance(const std::vector<std::string>& current, std::vector<std::string> live,
                        uint32_t shard_count, uint32_t vnodes);

// Shards per node for `owners`, in the order of `nodes`.
std::vector<uint32_t> shards_per_node(const std::vector<std::string>& owners,
                                      const std::vector<std::string>& nodes);

}  // namespace aether::cluster
