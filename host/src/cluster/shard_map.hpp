// The shard map the leader publishes in the cluster's MAP bucket: the owner
// of every shard, the epoch it was published in, and the migrations in
// flight. Its wire form, and the leader's rebalancing round over it as a pure
// function of the members, so that the decision is tested without NATS.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace aether::cluster {

struct Migration {
  uint32_t shard = 0;
  std::string from;
  std::string to;
  uint64_t planned_epoch = 0;
};

struct ShardMap {
  uint64_t epoch = 0;
  std::vector<std::string> owners;            // one per shard; "" = no owner
  std::map<uint32_t, Migration> migrations;  // by shard

  uint32_t shard_count() const { return static_cast<uint32_t>(owners.size()); }
};

// shard -> the planned epoch of the migration its source released.
using Released = std::map<uint32_t, uint64_t>;

bool is_released(const Released& released, const Migration& mg);

// {"epoch":E,"nodes":[ids],"owners":[index or -1],"migrations":[[shard,from,to,planned_epoch]]}
std::string encode_map(const ShardMap& m);
// nullopt for anything that is not such a document (it may be forged).
std::optional<ShardMap> decode_map(const std::string& text);
// True iff `m` has one owner per shard of `shards` and migrations only of
// those shards: shards index per-shard vectors, so a forged or broken map
// must not be installed.
bool map_fits(const ShardMap& m, uint32_t shards);

struct RoundOptions {
  uint32_t shards = 0;
  uint32_t vnodes = 0;
  uint32_t max_moves = 0;             // migrations in flight at most
  int64_t handoff_timeout_ms = 0;     // a migration not released by then is re-planned
};

// What one leader round decided.
struct RoundResult {
  bool changed = false;               // publish `map` (with its epoch bumped)
  uint64_t migrations_done = 0;       // settled: the target owns the shard
  uint64_t migrations_failed = 0;     // dropped: target gone, source gone with no target, or timed out
  std::vector<std::string> warnings;  // for the log
};

// One leader round over `m` (the published map, or an empty one): settles
// the migrations whose source released the shard or died, drops those whose
// target died or that outlived the handoff timeout, then plans moves toward
// the balanced map of the members not leaving (at most max_moves in flight;
// a shard whose owner is gone moves at once). `members`: live node id ->
// leaving. `planned_at`: shard -> when its migration was planned (ms on
// `now_ms`'s clock), kept by the caller across rounds. On change, `m.epoch`
// is bumped.
RoundResult plan_round(ShardMap& m, const std::map<std::string, bool>& members, const Released& released,
                       std::map<uint32_t, int64_t>& planned_at, int64_t now_ms, const RoundOptions& opts);

}  // namespace aether::cluster
