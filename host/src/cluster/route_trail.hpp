// What a forwarded command carries from node to node, so that a command can
// never travel in a circle and nodes that disagree about a shard's owner
// settle it by the shard map's epoch (docs/operations.md, "Routing").
//
// Headers of a message on aether._cluster.fwd.<node>.<ns>.<type>.<id>:
//   Aether-Epoch      the sender's shard-map epoch
//   Aether-Path       the nodes the command went through, comma-separated,
//                     the node where it entered first
//   Aether-Budget-Ms  how long the receiver may hold the command (waiting for
//                     an owner) before it must answer that it was not run
// A reply with header Aether-Redirect (an epoch) says "the owner is on your
// side of the path": the sender refreshes its map to at least that epoch and
// routes the command again; the command has not been run.
//
// The headers are read only on the forward subject; on a client's command
// subject they are ignored. Whoever may publish on the forward subject can at
// worst make a command fail early (a path naming the owner) or cause one map
// read per routing tick (a high epoch): the owner is always taken from this
// node's own map.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.hpp"

namespace aether {

inline constexpr char kHeaderEpoch[] = "Aether-Epoch";
inline constexpr char kHeaderPath[] = "Aether-Path";
inline constexpr char kHeaderBudget[] = "Aether-Budget-Ms";
inline constexpr char kHeaderRedirect[] = "Aether-Redirect";

struct RouteTrail {
  static constexpr size_t kMaxPath = 16;  // nodes a command may pass through

  uint64_t epoch = 0;
  std::vector<std::string> path;
  int64_t budget_ms = -1;  // -1: none given (a command that entered here)

  bool on_path(const std::string& node) const;
  std::string path_text() const;  // "a,b,c"
};

// The trail from the three header values (each may be null: absent).
// Refuses what no node sends: a path that is too long or names an invalid
// node id, an epoch or budget that is not a decimal number. The budget is
// capped at `max_budget_ms`.
Result<RouteTrail> parse_route_trail(const char* epoch, const char* path, const char* budget, int64_t max_budget_ms);

// What a node does with a command, given the node its own map sends it to
// (`target`, empty when it runs here or waits here):
//   kGo        route it as the map says
//   kFetchMap  the sender knew a newer map: read the map first (once)
//   kRedirect  the target already passed it on: send it back to the sender
//              with this node's epoch instead of forwarding it in a circle
enum class TrailStep { kGo, kFetchMap, kRedirect };
TrailStep check_trail(const RouteTrail& trail, uint64_t my_epoch, const std::string& target, bool map_fetched);

}  // namespace aether
