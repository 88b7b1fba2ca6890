// ClusterNode: the leader round, the shard map as this node sees it, and the
// handoff on the source side.
#include "cluster/node_impl.hpp"
#include "cluster/placement.hpp"
#include "core/json_limits.hpp"
#include "core/log.hpp"
#include "core/names.hpp"

namespace aether {

namespace {

// "node-1, node-3": the distinct owners of `m`'s shards, for the log.
std::string owners_of(const Map& m) {
  std::set<std::string> ids(m.owners.begin(), m.owners.end());
  ids.erase("");
  std::string out;
  for (const auto& id : ids) out += (out.empty() ? "" : ", ") + quote_for_message(id);
  return out.empty() ? "none" : out;
}

}  // namespace

// One leader round: settle migrations, plan new ones (cluster::plan_round),
// publish on change.
void ClusterNode::Impl::lead() {
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
  auto got = map_kv->get("map");
  if (!got) return;  // NATS away; next round
  if (got->has_value()) {
    auto fresh = decode_map((*got)->value);
    rev = (*got)->revision;
    if (!fresh || !map_fits(*fresh, opts.shards)) {
      log::error("cluster: the published shard map is undecodable; not rebalancing");
      return;
    }
    m = std::move(*fresh);
  }
  const std::string owners_before = owners_of(m);
  const auto round = cluster::plan_round(m, members, rel, planned_at, now_ms(),
                                         {opts.shards, opts.vnodes, opts.max_moves, opts.handoff_timeout_ms});
  for (const auto& w : round.warnings) log::warn("cluster: " + w);
  migrations_done += round.migrations_done;
  migrations_failed += round.migrations_failed;
  if (!round.changed) return;
  const std::string text = encode_map(m);
  auto published = rev == 0 ? map_kv->create("map", text) : map_kv->update("map", text, rev);
  if (!published) {
    log::warn("cluster: publishing shard map epoch " + std::to_string(m.epoch) + ": " +
              published.status().message());
    return;
  }
  if (std::string owners = owners_of(m); owners != owners_before) {
    log::info("cluster: shard map epoch " + std::to_string(m.epoch) + ": shards owned by " + owners + " (before: " +
              owners_before + ")");
  }
  install_map(std::move(m));
}

void ClusterNode::Impl::install_map(Map m) {
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
void ClusterNode::Impl::recompute_draining() {
  std::set<uint32_t> next;
  for (const auto& [s, mg] : map.migrations) {
    if (mg.from == opts.node_id && !is_released(released, mg)) next.insert(s);
  }
  draining.swap(next);
}

void ClusterNode::Impl::watch_step() {
  auto e = map_watch->next(kWatchWaitMs);
  if (!e || !e->has_value() || (*e)->deleted) return;
  const std::string& key = (*e)->key;
  const std::string& value = (*e)->value;
  const uint64_t rev = (*e)->revision;
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

void ClusterNode::Impl::drain() {
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
    if (Status st = map_kv->put(key, v); !st) {
      log::warn("cluster: releasing shard " + std::to_string(s) + ": " + st.message());
      continue;
    }
    std::lock_guard lock(mu);
    released[s] = mg.planned_epoch;
    recompute_draining();
  }
  changed.notify_all();
}

}  // namespace aether
