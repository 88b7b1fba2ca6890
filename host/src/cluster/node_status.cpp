// ClusterNode: what the node reports about the cluster (status, figures, JSON).
#include "cluster/node_impl.hpp"

namespace aether {

ClusterStatus ClusterNode::Impl::status() {
  auto live = read_members();
  ClusterStatus st;
  std::lock_guard lock(mu);
  st.node_id = opts.node_id;
  st.leader = leader_id;
  st.epoch = map.epoch;
  st.shard_count = opts.shards;
  std::map<std::string, uint32_t> per;
  for (const auto& o : map.owners) {
    if (o.empty()) ++st.unowned_shards;
    else ++per[o];
  }
  if (map.owners.empty()) st.unowned_shards = opts.shards;
  for (const auto& [id, info] : live) {
    ClusterNodeInfo n;
    n.id = id;
    n.ingress = info.value("ingress", "");
    n.plugins = info.value("plugins", std::vector<std::string>{});
    if (info.contains("load") && info["load"].is_object()) {
      n.active_actors = info["load"].value("active_actors", uint64_t{0});
      n.commands = info["load"].value("commands", uint64_t{0});
    }
    n.leaving = info.value("leaving", false);
    n.shards = per[id];
    st.nodes.push_back(std::move(n));
  }
  for (const auto& [s, mg] : map.migrations) {
    const bool rel = is_released(released, mg);
    const bool drn = draining.count(s) > 0;
    const bool snap = snapshotting.count(s) > 0;
    st.migrations.push_back(
        {s, mg.from, mg.to, rel ? "released" : snap ? "snapshotting" : drn ? "draining" : "planned", mg.planned_epoch});
  }
  st.recent.assign(recent.begin(), recent.end());
  st.migrations_done = migrations_done.load();
  st.migrations_failed = migrations_failed.load();
  st.forwarded = forwarded.load();
  st.retried = retried_commands.load();
  return st;
}

bool ClusterNode::Impl::owns_nothing_and_settled() {
  std::lock_guard lock(mu);
  if (!have_map) return true;
  for (const auto& o : map.owners) {
    if (o == opts.node_id) return false;
  }
  for (const auto& [s, mg] : map.migrations) {
    if (mg.from == opts.node_id || mg.to == opts.node_id) return false;
  }
  return true;
}

ClusterStatus ClusterNode::status() const { return impl_->status(); }

ClusterNode::Figures ClusterNode::figures() const {
  Figures f;
  std::lock_guard lock(impl_->mu);
  f.epoch = impl_->map.epoch;
  for (const auto& o : impl_->map.owners) f.shards_owned += o == impl_->opts.node_id;
  f.migrations_in_flight = static_cast<uint32_t>(impl_->map.migrations.size());
  f.leader = impl_->is_leader.load();
  f.forwarded = impl_->forwarded.load();
  f.retried = impl_->retried_commands.load();
  f.migrations_done = impl_->migrations_done.load();
  f.migrations_failed = impl_->migrations_failed.load();
  return f;
}

std::string ClusterNode::status_json() const {
  const ClusterStatus st = impl_->status();
  json nodes = json::array();
  for (const auto& n : st.nodes) {
    nodes.push_back({{"id", n.id},
                     {"ingress", n.ingress},
                     {"plugins", n.plugins},
                     {"active_actors", n.active_actors},
                     {"commands", n.commands},
                     {"leaving", n.leaving},
                     {"shards", n.shards},
                     {"leader", n.id == st.leader}});
  }
  auto list = [](const std::vector<ClusterMigration>& v) {
    json out = json::array();
    for (const auto& m : v) {
      out.push_back({{"shard", m.shard}, {"from", m.from}, {"to", m.to}, {"state", m.state},
                     {"planned_epoch", m.planned_epoch}});
    }
    return out;
  };
  const json migs = list(st.migrations);
  json owners;  // the owner of every shard, for a shard map view
  {
    std::lock_guard lock(impl_->mu);
    owners = impl_->map.owners;
  }
  return json{{"mode", "cluster"},
              {"owners", owners},
              {"node", st.node_id},
              {"leader", st.leader},
              {"epoch", st.epoch},
              {"shards", st.shard_count},
              {"unowned_shards", st.unowned_shards},
              {"nodes", nodes},
              {"migrations", migs},
              {"recent_migrations", list(st.recent)},
              {"migrations_done", st.migrations_done},
              {"migrations_failed", st.migrations_failed},
              {"forwarded", st.forwarded},
              {"retried", st.retried}}
      .dump();
}

}  // namespace aether
