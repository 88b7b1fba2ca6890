// Placement simulation: 1,000 nodes and 65,536 shards. Balance of the
// bounded-load ring (cluster::rebalance) against a plain consistent-hash ring
// with the same virtual nodes (the baseline), movement on a join and a leave
// against the optimum, and the time to compute a map.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <numeric>

#include "cluster/placement.hpp"

namespace ac = aether::cluster;

namespace {

constexpr uint32_t kNodes = 1000;
constexpr uint32_t kShards = 65536;
constexpr uint32_t kVnodes = 64;

std::vector<std::string> node_ids(uint32_t n) {
  std::vector<std::string> out;
  for (uint32_t i = 0; i < n; ++i) out.push_back("node-" + std::to_string(i));
  return out;
}

void balance_counters(benchmark::State& state, const std::vector<std::string>& owners,
                      const std::vector<std::string>& nodes) {
  const auto per = ac::shards_per_node(owners, nodes);
  const double mean = static_cast<double>(owners.size()) / nodes.size();
  state.counters["max_over_mean"] = *std::max_element(per.begin(), per.end()) / mean;
  state.counters["min_over_mean"] = *std::min_element(per.begin(), per.end()) / mean;
}

// Plain consistent hashing: every shard to the first virtual node clockwise.
std::vector<std::string> plain_ring(const std::vector<std::string>& nodes) {
  std::vector<std::pair<uint64_t, uint32_t>> ring;
  for (uint32_t n = 0; n < nodes.size(); ++n) {
    for (uint32_t v = 0; v < kVnodes; ++v) ring.push_back({ac::mix64(ac::fnv1a64(nodes[n] + "#" + std::to_string(v))), n});
  }
  std::sort(ring.begin(), ring.end());
  std::vector<std::string> owners(kShards);
  for (uint32_t s = 0; s < kShards; ++s) {
    const uint64_t p = ac::mix64(ac::fnv1a64("shard#" + std::to_string(s)));
    auto it = std::lower_bound(ring.begin(), ring.end(), std::pair<uint64_t, uint32_t>{p, 0});
    owners[s] = nodes[(it == ring.end() ? ring.front() : *it).second];
  }
  return owners;
}

void BM_PlainRing_Initial(benchmark::State& state) {
  const auto nodes = node_ids(kNodes);
  std::vector<std::string> owners;
  for (auto _ : state) owners = plain_ring(nodes);
  balance_counters(state, owners, nodes);
}
BENCHMARK(BM_PlainRing_Initial)->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_Placement_Initial(benchmark::State& state) {
  const auto nodes = node_ids(kNodes);
  ac::RebalancePlan plan;
  for (auto _ : state) plan = ac::rebalance({}, nodes, kShards, kVnodes);
  balance_counters(state, plan.owners, nodes);
}
BENCHMARK(BM_Placement_Initial)->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_Placement_Join(benchmark::State& state) {
  const auto base = ac::rebalance({}, node_ids(kNodes), kShards, kVnodes);
  const auto nodes = node_ids(kNodes + 1);
  ac::RebalancePlan plan;
  for (auto _ : state) plan = ac::rebalance(base.owners, nodes, kShards, kVnodes);
  balance_counters(state, plan.owners, nodes);
  state.counters["moved"] = static_cast<double>(plan.moves.size());
  state.counters["moved_over_optimal"] = plan.moves.size() / (static_cast<double>(kShards) / (kNodes + 1));
}
BENCHMARK(BM_Placement_Join)->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_Placement_Leave(benchmark::State& state) {
  const auto all = node_ids(kNodes);
  const auto base = ac::rebalance({}, all, kShards, kVnodes);
  auto nodes = all;
  nodes.erase(nodes.begin() + kNodes / 2);
  const double held = ac::shards_per_node(base.owners, {all[kNodes / 2]})[0];
  ac::RebalancePlan plan;
  for (auto _ : state) plan = ac::rebalance(base.owners, nodes, kShards, kVnodes);
  balance_counters(state, plan.owners, nodes);
  state.counters["moved"] = static_cast<double>(plan.moves.size());
  state.counters["moved_over_optimal"] = plan.moves.size() / held;
}
BENCHMARK(BM_Placement_Leave)->Unit(benchmark::kMillisecond)->Iterations(3);

// Plain ring movement on the same join, for comparison.
void BM_PlainRing_Join(benchmark::State& state) {
  const auto before = plain_ring(node_ids(kNodes));
  std::vector<std::string> after;
  for (auto _ : state) after = plain_ring(node_ids(kNodes + 1));
  size_t moved = 0;
  for (uint32_t s = 0; s < kShards; ++s) moved += before[s] != after[s];
  state.counters["moved_over_optimal"] = moved / (static_cast<double>(kShards) / (kNodes + 1));
}
BENCHMARK(BM_PlainRing_Join)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace

BENCHMARK_MAIN();
