// Test and benchmark support: the faults of a fault run against a
// ClusterHarness (3 nats-servers s1..s3, hosts node-1..3) under a
// HistoryLoad, each as a Phase. The load's client is on s1, which no fault
// touches: a nats-server fault hits s2 or s3, chosen (with leader
// step-downs where needed) so that it leads what the fault is about.
#pragma once

#include <nats/nats.h>

#include <signal.h>

#include <algorithm>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "support/cluster_harness.hpp"
#include "support/history_load.hpp"

namespace aether::test {

struct FaultPlan {
  int nats_pause_ms = 3000;  // SIGSTOP of a nats-server
  int nats_down_ms = 2000;   // kill -9 of a nats-server until its restart
  int host_pause_ms = 2000;  // SIGSTOP of a host
  int settle_ms = 2000;      // after a fault ends, before the next one
  int kill_settle_ms = 5000;  // after a host is killed
  // A stream of the caller's (a probe of nats-server itself) whose leader
  // is moved to the server each nats-server fault hits ("": none).
  std::string probe_stream;
  // Another such stream whose leader is moved to the server leading the
  // store's events stream before each nats-server fault ("": none): what a
  // replicated stream whose leader the fault does not hit goes through.
  std::string store_probe_stream;
};

// The streams whose leader decides the store's writes and lookups.
inline const std::vector<std::string>& store_streams() {
  static const std::vector<std::string> s = {"AETHER_default", "AETHER_default_SNAPSHOTS", "KV_AETHER_default_IDEM"};
  return s;
}
inline const std::vector<std::string>& cluster_buckets() {
  static const std::vector<std::string> s = {"KV_AETHER_CLUSTER_NODES", "KV_AETHER_CLUSTER_LEADER",
                                             "KV_AETHER_CLUSTER_MAP"};
  return s;
}

class FaultRunner {
 public:
  FaultRunner(ClusterHarness& cluster, HistoryLoad& load) : cluster_(cluster), load_(load) {
    natsConnection_ConnectTo(&nc_, cluster_.nats(0).url().c_str());
    natsConnection_JetStream(&js_, nc_, nullptr);
  }
  ~FaultRunner() {
    jsCtx_Destroy(js_);
    natsConnection_Destroy(nc_);
  }

  // The server ("s1".."s3") leading `stream`, "" while it has none.
  std::string leader(const std::string& stream) {
    jsStreamInfo* si = nullptr;
    jsErrCode err = static_cast<jsErrCode>(0);
    std::string out;
    if (js_GetStreamInfo(&si, js_, stream.c_str(), nullptr, &err) == NATS_OK && si->Cluster && si->Cluster->Leader) {
      out = si->Cluster->Leader;
    }
    jsStreamInfo_Destroy(si);
    return out;
  }

  // Asks `stream`'s leader to step down; waits (bounded) for another one.
  void step_down(const std::string& stream) {
    const std::string before = leader(stream);
    natsMsg* reply = nullptr;
    const std::string subject = "$JS.API.STREAM.LEADER.STEPDOWN." + stream;
    if (natsConnection_RequestString(&reply, nc_, subject.c_str(), "", 2000) == NATS_OK) natsMsg_Destroy(reply);
    for (int i = 0; i < 100; ++i) {
      const std::string now = leader(stream);
      if (!now.empty() && now != before) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  // What server `s` ("s2") leads, as text.
  std::string leads(const std::string& s) {
    std::string out;
    for (const auto* list : {&store_streams(), &cluster_buckets()}) {
      for (const auto& st : *list) {
        if (leader(st) == s) out += (out.empty() ? "" : ", ") + st;
      }
    }
    return out.empty() ? "nothing" : out;
  }

  // Moves the leader of `stream` to server `index` (as far as 10
  // step-downs can).
  void colocate(const std::string& stream, size_t index) {
    const std::string name = "s" + std::to_string(index + 1);
    for (int i = 0; i < 10 && !stream.empty() && leader(stream) != name; ++i) step_down(stream);
  }

  // Moves the leader of `stream` off s1 (as far as 10 step-downs can);
  // returns the index of the server leading it then (1 or 2; 0 if it
  // could not be moved).
  size_t lead_off_s1(const std::string& stream) {
    for (int i = 0; i < 10 && leader(stream) == "s1"; ++i) step_down(stream);
    const std::string now = leader(stream);
    return now == "s3" ? 2 : now == "s2" ? 1 : 0;
  }

  // A server other than s1 leading the events stream (index 1 or 2).
  size_t arrange_stream_leader() {
    const size_t at = lead_off_s1(store_streams()[0]);
    return at == 0 ? 1 : at;
  }

  // A server other than s1 that leads a cluster bucket and none of the
  // store's streams (as far as 10 step-downs each can arrange it).
  size_t arrange_bucket_only() {
    const size_t target = leader(store_streams()[0]) == "s3" ? 1 : 2;
    const std::string name = "s" + std::to_string(target + 1);
    for (const auto& st : store_streams()) {
      for (int i = 0; i < 10 && leader(st) == name; ++i) step_down(st);
    }
    const std::string& bucket = cluster_buckets()[0];
    for (int i = 0; i < 10 && leader(bucket) != name; ++i) step_down(bucket);
    return target;
  }

  Phase pause_nats(size_t server, int ms, const std::string& why) {
    const std::string name = "s" + std::to_string(server + 1);
    Phase p{"SIGSTOP nats-server " + name + " (" + why + "; it leads " + leads(name) + ") for " +
                std::to_string(ms) + " ms",
            load_.now()};
    {
      Paused paused(cluster_.nats(server).pid());
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    }
    return settle(p, load_.now(), plan_.settle_ms);
  }

  Phase kill_nats(size_t server, int down_ms) {
    const std::string name = "s" + std::to_string(server + 1);
    Phase p{"kill -9 nats-server " + name + " (it leads " + leads(name) + "), restarted after " +
                std::to_string(down_ms) + " ms",
            load_.now()};
    cluster_.nats(server).kill9();
    std::this_thread::sleep_for(std::chrono::milliseconds(down_ms));
    cluster_.nats(server).start();
    return settle(p, load_.now(), plan_.settle_ms);
  }

  Phase pause_host(const std::string& node, int ms) {
    Phase p{"SIGSTOP " + node + " for " + std::to_string(ms) + " ms", load_.now()};
    {
      Paused paused(cluster_.host(node).pid());
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    }
    return settle(p, load_.now(), plan_.settle_ms);
  }

  // SIGTERM (a graceful leave) or kill -9 of a host.
  Phase stop_host(const std::string& node, bool kill) {
    Phase p{(kill ? "kill -9 " : "SIGTERM ") + node, load_.now()};
    const size_t left = cluster_.running().size() - 1;
    if (kill) {
      cluster_.stop_host(node, true);
      // The survivors' map without the dead node and every shard owned.
      const auto until = SteadyClock::now() + std::chrono::milliseconds(plan_.kill_settle_ms);
      const std::string via = cluster_.any_live();
      while (p.converged < 0 && SteadyClock::now() < until) {
        const auto st = cluster_.status(via);  // one survivor, lightly: it takes the NATS round trips of a status
        if (st.is_object() && st["nodes"].size() == left && st["unowned_shards"] == 0 && st["migrations"].empty() &&
            st["owners"].is_array() && std::find(st["owners"].begin(), st["owners"].end(), node) == st["owners"].end()) {
          p.converged = load_.now() - p.from;
        } else {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
      }
      return settle(p, p.from, static_cast<int>(std::max(0.0, plan_.kill_settle_ms - 1000 * (load_.now() - p.from))));
    }
    cluster_.stop_host(node, false);  // returns when it has left and exited
    p.converged = load_.now() - p.from;
    return settle(p, p.from, plan_.settle_ms);
  }

  // A new host joins (not a fault: the rebalance under load); the phase's
  // fault ends when the map has converged again.
  Phase join(const std::string& node) {
    Phase p{node + " joins", load_.now()};
    const size_t nodes = cluster_.running().size() + 1;
    if (cluster_.start_host(node) == nullptr || !cluster_.wait_converged(nodes, 60)) {
      p.fault += " (did not converge)";
      std::cerr << node << " joined and the map did not converge: " << cluster_.last_status().dump() << "\n"
                << cluster_.hosts_state(40);
    }
    return settle(p, load_.now(), plan_.settle_ms);
  }

  // Moves the store probe's leader to the server leading the events stream.
  void colocate_store_probe() {
    const std::string at = leader(store_streams()[0]);
    if (at.size() == 2 && at[0] == 's' && at[1] >= '1' && at[1] <= '3') {
      colocate(plan_.store_probe_stream, static_cast<size_t>(at[1] - '1'));
    }
  }

  // Every fault of the suite, in turn; node-1 and node-4 remain at the end.
  std::vector<Phase> run_all(const FaultPlan& plan) {
    plan_ = plan;
    std::vector<Phase> out;
    const size_t lead = arrange_stream_leader();
    colocate(plan.probe_stream, lead);
    out.push_back(pause_nats(lead, plan.nats_pause_ms, "the store's stream leader"));
    const size_t bucket = arrange_bucket_only();
    colocate(plan.probe_stream, bucket);
    colocate_store_probe();
    out.push_back(pause_nats(bucket, plan.nats_pause_ms, "a cluster bucket leader only"));
    const size_t killed = arrange_stream_leader();
    colocate(plan.probe_stream, killed);
    out.push_back(kill_nats(killed, plan.nats_down_ms));
    out.push_back(pause_host("node-2", plan.host_pause_ms));
    out.push_back(stop_host("node-2", false));
    out.push_back(join("node-4"));
    out.push_back(stop_host("node-3", true));
    for (size_t i = 0; i + 1 < out.size(); ++i) out[i].next_from = out[i + 1].from;
    return out;
  }

 private:
  Phase settle(Phase p, double fault_end, int ms) {
    p.fault_end = fault_end;
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    p.to = load_.now();
    return p;
  }

  ClusterHarness& cluster_;
  HistoryLoad& load_;
  FaultPlan plan_;
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
};

}  // namespace aether::test
