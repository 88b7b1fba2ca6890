// Cluster rebalancing under load: 3 aether-host nodes on a 3-server NATS
// cluster, 16 clients over 2,000 actors (NATS request/reply). A 4th node
// joins, then leaves gracefully. Per actor, the longest a client waited for
// an answer (its unavailability) during each rebalance, against the same
// figure in a steady window of the same length just before (the baseline);
// and the time from starting the node (or sending SIGTERM) to a converged map.
#include <algorithm>
#include <cstdio>

#include "support/cluster_harness.hpp"

namespace {

using aether::test::ClusterHarness;
using aether::test::ClusterLoad;
using aether::test::SteadyClock;
using aether::test::seconds_since;

constexpr int kActors = 2000;

struct Window {
  double from;
  double to;
};

// Per actor, the longest wait of a command that was outstanding in `w`.
std::vector<double> unavailability(const ClusterLoad& load, Window w) {
  std::vector<double> out;
  for (const auto& per_actor : load.samples()) {
    double worst = 0;
    for (const auto& s : per_actor) {
      if (s.sent_at <= w.to && s.sent_at + s.latency >= w.from) worst = std::max(worst, s.latency);
    }
    out.push_back(worst);
  }
  std::sort(out.begin(), out.end());
  return out;
}

double pct(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t i = std::min(sorted.size() - 1, static_cast<size_t>(p * static_cast<double>(sorted.size())));
  return sorted[i];
}

void report(const char* what, const ClusterLoad& load, Window during, double converge_s) {
  const double len = during.to - during.from;
  const Window before{during.from - len, during.from};
  const auto r = unavailability(load, during);
  const auto b = unavailability(load, before);
  std::printf("%s: converged map after %.2f s\n", what, converge_s);
  std::printf("  per-actor unavailability  p50 %7.1f ms  p99 %7.1f ms  max %7.1f ms  (during, %.2f s window)\n",
              pct(r, 0.5) * 1e3, pct(r, 0.99) * 1e3, r.back() * 1e3, len);
  std::printf("  steady baseline           p50 %7.1f ms  p99 %7.1f ms  max %7.1f ms  (same length, just before)\n",
              pct(b, 0.5) * 1e3, pct(b, 0.99) * 1e3, b.back() * 1e3);
  std::printf("  ratio p99 during/steady: %.2fx   goal: p99 under 500 ms -> %s\n",
              pct(b, 0.99) > 0 ? pct(r, 0.99) / pct(b, 0.99) : 0.0, pct(r, 0.99) < 0.5 ? "met" : "NOT met");
}

int fail(const std::string& why) {
  std::fprintf(stderr, "cluster_bench: %s\n", why.c_str());
  return 1;
}

}  // namespace

int main() {
  ClusterHarness cluster;
  if (!cluster.nats_ready()) return fail("the NATS cluster did not become ready");
  std::string why;
  for (int i = 1; i <= 3; ++i) {
    if (cluster.start_host("node-" + std::to_string(i), &why) == nullptr) return fail(why);
  }
  if (!cluster.wait_converged(3, 60)) return fail("3 nodes did not converge: " + cluster.last_status().dump());
  ClusterLoad load(cluster.nats(0).url(), kActors, /*keep_samples=*/true);
  load.start();
  if (!load.wait_warm()) return fail("the load did not reach every actor");
  std::this_thread::sleep_for(std::chrono::seconds(8));  // the steady baseline

  const double join_at = load.elapsed();
  const auto join_clock = SteadyClock::now();
  if (cluster.start_host("node-4", &why) == nullptr) return fail(why);
  if (!cluster.wait_converged(4, 120)) return fail("the join did not converge: " + cluster.last_status().dump());
  const double join_converged = seconds_since(join_clock);
  const double join_done = load.elapsed();
  std::this_thread::sleep_for(std::chrono::seconds(8));

  const double leave_at = load.elapsed();
  const auto leave_clock = SteadyClock::now();
  cluster.host("node-4").signal(SIGTERM);
  // Converged once the leaver is gone from the membership and its shards moved.
  bool left = false;
  while (seconds_since(leave_clock) < 120) {
    const auto s = cluster.status("node-1");
    if (s.is_object() && s["nodes"].size() == 3 && s["migrations"].empty() && s["unowned_shards"] == 0) {
      left = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const double leave_converged = seconds_since(leave_clock);
  const double leave_done = load.elapsed();
  if (cluster.stop_host("node-4", false) != 0) return fail("node-4 did not exit cleanly");
  std::this_thread::sleep_for(std::chrono::seconds(1));
  load.stop();
  if (!left) return fail("the leave did not converge");

  const auto errors = load.errors();
  std::printf("cluster_bench: 3 nodes + 1, 2,000 actors, 16 clients, %llu commands, %zu failed\n",
              static_cast<unsigned long long>(load.sent()), errors.size());
  report("join of a 4th node", load, {join_at, join_done}, join_converged);
  report("graceful leave of that node", load, {leave_at, leave_done}, leave_converged);
  return 0;
}
