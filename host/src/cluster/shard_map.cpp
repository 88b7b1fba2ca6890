#include "cluster/shard_map.hpp"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <unordered_map>

#include "cluster/placement.hpp"
#include "core/json_limits.hpp"

namespace aether::cluster {

using json = nlohmann::json;

bool is_released(const Released& released, const Migration& mg) {
  auto r = released.find(mg.shard);
  return r != released.end() && r->second == mg.planned_epoch;
}

std::string encode_map(const ShardMap& m) {
  std::vector<std::string> nodes;
  std::unordered_map<std::string, int> index;
  json owners = json::array();
  for (const auto& o : m.owners) {
    if (o.empty()) {
      owners.push_back(-1);
      continue;
    }
    auto [it, added] = index.emplace(o, static_cast<int>(nodes.size()));
    if (added) nodes.push_back(o);
    owners.push_back(it->second);
  }
  json migs = json::array();
  for (const auto& [s, mg] : m.migrations) migs.push_back({s, mg.from, mg.to, mg.planned_epoch});
  return json{{"epoch", m.epoch}, {"nodes", nodes}, {"owners", owners}, {"migrations", migs}}.dump();
}

std::optional<ShardMap> decode_map(const std::string& text) {
  if (!check_json_text(text, 8, "shard map")) return std::nullopt;
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  // nlohmann converts -1 to 2^64-1 silently: a forged epoch that large would
  // outrank every map published after it.
  const auto unsigned_at = [](const json& v) {
    if (!v.is_number_unsigned()) throw std::invalid_argument("not an unsigned integer");
    return v.get<uint64_t>();
  };
  try {
    ShardMap m;
    m.epoch = unsigned_at(j.at("epoch"));
    const auto nodes = j.at("nodes").get<std::vector<std::string>>();
    for (const auto& o : j.at("owners")) {
      const int i = o.get<int>();
      m.owners.push_back(i >= 0 && static_cast<size_t>(i) < nodes.size() ? nodes[static_cast<size_t>(i)] : "");
    }
    for (const auto& mg : j.at("migrations")) {
      const uint64_t shard = unsigned_at(mg.at(0));
      if (shard > UINT32_MAX) return std::nullopt;
      Migration x{static_cast<uint32_t>(shard), mg.at(1).get<std::string>(), mg.at(2).get<std::string>(),
                  unsigned_at(mg.at(3))};
      m.migrations[x.shard] = x;
    }
    return m;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

bool map_fits(const ShardMap& m, uint32_t shards) {
  return m.owners.size() == shards && (m.migrations.empty() || m.migrations.rbegin()->first < shards);
}

namespace {

// Step 1 of a round: settle or drop the migrations in flight.
void settle(ShardMap& m, const std::map<std::string, bool>& members, const Released& released,
            std::map<uint32_t, int64_t>& planned_at, int64_t now, const RoundOptions& opts, RoundResult& r) {
  const auto alive = [&](const std::string& id) { return !id.empty() && members.count(id) > 0; };
  for (auto it = m.migrations.begin(); it != m.migrations.end();) {
    const Migration& mg = it->second;
    bool drop = false;
    if (is_released(released, mg) || !alive(mg.from)) {
      m.owners[mg.shard] = alive(mg.to) ? mg.to : "";
      if (alive(mg.to)) ++r.migrations_done; else ++r.migrations_failed;
      drop = true;
    } else if (!alive(mg.to)) {
      ++r.migrations_failed;
      drop = true;  // the source keeps the shard; planned again below
    } else {
      auto pa = planned_at.find(mg.shard);
      if (pa == planned_at.end()) {
        planned_at[mg.shard] = now;
      } else if (now - pa->second > opts.handoff_timeout_ms) {
        r.warnings.push_back("migration of shard " + std::to_string(mg.shard) + " from " + mg.from + " to " + mg.to +
                             " not released within " + std::to_string(opts.handoff_timeout_ms) +
                             " ms; re-planning");
        ++r.migrations_failed;
        drop = true;
      }
    }
    if (drop) {
      planned_at.erase(mg.shard);
      it = m.migrations.erase(it);
      r.changed = true;
    } else {
      ++it;
    }
  }
}

// Step 2: plan toward the balanced map of the members not leaving.
void plan(ShardMap& m, const std::map<std::string, bool>& members, std::map<uint32_t, int64_t>& planned_at,
          int64_t now, const RoundOptions& opts, RoundResult& r) {
  std::vector<std::string> placeable;
  for (const auto& [id, leaving] : members) {
    if (!leaving) placeable.push_back(id);
  }
  if (placeable.empty()) return;
  std::vector<std::string> effective = m.owners;
  for (const auto& [s, mg] : m.migrations) effective[s] = mg.to;
  const auto moves = rebalance(effective, placeable, opts.shards, opts.vnodes).moves;
  const uint64_t next_epoch = m.epoch + 1;
  for (const auto& mv : moves) {
    if (m.migrations.count(mv.shard)) continue;
    const std::string& from = m.owners[mv.shard];
    if (from.empty() || members.count(from) == 0) {
      m.owners[mv.shard] = mv.to;  // nobody serves it: the new owner may start at once
      r.changed = true;
    } else if (m.migrations.size() < opts.max_moves) {
      m.migrations[mv.shard] = Migration{mv.shard, from, mv.to, next_epoch};
      planned_at[mv.shard] = now;
      r.changed = true;
    }
  }
}

}  // namespace

RoundResult plan_round(ShardMap& m, const std::map<std::string, bool>& members, const Released& released,
                       std::map<uint32_t, int64_t>& planned_at, int64_t now_ms, const RoundOptions& opts) {
  RoundResult r;
  if (m.owners.size() != opts.shards) m.owners.resize(opts.shards);
  settle(m, members, released, planned_at, now_ms, opts, r);
  plan(m, members, planned_at, now_ms, opts, r);
  if (r.changed) ++m.epoch;
  return r;
}

}  // namespace aether::cluster
