// ClusterNode: the leader round, the shard map as this node sees it, and the
// handoff on the source side.
#include "cluster/node_impl.hpp"
#include "cluster/placement.hpp"
#include "core/json_limits.hpp"
#include "core/log.hpp"

namespace aether {

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
  kvEntry* e = nullptr;
  natsStatus gs = kvStore_Get(&e, map_kv, "map");
  if (gs == NATS_OK) {
    auto fresh = decode_map(kvEntry_ValueString(e));
    rev = kvEntry_Revision(e);
    kvEntry_Destroy(e);
    if (!fresh || !map_fits(*fresh, opts.shards)) {
      log::error("cluster: the published shard map is undecodable; not rebalancing");
      return;
    }
    m = std::move(*fresh);
  } else if (gs != NATS_NOT_FOUND) {
    return;  // NATS away; next round
  }
  const auto round = cluster::plan_round(m, members, rel, planned_at, now_ms(),
                                         {opts.shards, opts.vnodes, opts.max_moves, opts.handoff_timeout_ms});
  for (const auto& w : round.warnings) log::warn("cluster: " + w);
  migrations_done += round.migrations_done;
  migrations_failed += round.migrations_failed;
  if (!round.changed) return;
  const std::string text = encode_map(m);
  uint64_t new_rev = 0;
  natsStatus ps = rev == 0 ? kvStore_CreateString(&new_rev, map_kv, "map", text.c_str())
                           : kvStore_UpdateString(&new_rev, map_kv, "map", text.c_str(), rev);
  if (ps != NATS_OK) {
    log::warn(nats_error(ps, "cluster: publishing shard map epoch " + std::to_string(m.epoch)));
    return;
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
  kvEntry* e = nullptr;
  natsStatus s = next_entry(map_watch, &e);
  if (s != NATS_OK || e == nullptr) return;
  const std::string key = kvEntry_Key(e);
  const bool put = kvEntry_Operation(e) == kvOp_Put;
  const std::string value = put ? kvEntry_ValueString(e) : "";
  const uint64_t rev = kvEntry_Revision(e);
  kvEntry_Destroy(e);
  if (!put) return;
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
    if (natsStatus st = kvStore_PutString(nullptr, map_kv, key.c_str(), v.c_str()); st != NATS_OK) {
      log::warn(nats_error(st, "cluster: releasing shard " + std::to_string(s)));
      continue;
    }
    std::lock_guard lock(mu);
    released[s] = mg.planned_epoch;
    recompute_draining();
  }
  changed.notify_all();
}

}  // namespace aether
