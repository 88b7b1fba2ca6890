// Placement: the actor -> shard hash, shard -> node balance, movement on a
// join or leave, and the same answer in every process.
#include "cluster/placement.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <numeric>
#include <random>
#include <set>

namespace ac = aether::cluster;

namespace {

constexpr uint32_t kShards = 1024;
constexpr uint32_t kVnodes = 64;

std::vector<std::string> node_ids(uint32_t n, uint32_t first = 0) {
  std::vector<std::string> out;
  for (uint32_t i = first; i < first + n; ++i) out.push_back("node-" + std::to_string(i));
  return out;
}

void expect_balanced(const std::vector<std::string>& owners, const std::vector<std::string>& nodes) {
  const auto per = ac::shards_per_node(owners, nodes);
  const double mean = static_cast<double>(owners.size()) / static_cast<double>(nodes.size());
  const uint32_t total = std::accumulate(per.begin(), per.end(), 0u);
  EXPECT_EQ(total, owners.size()) << "every shard has a live owner";
  for (size_t i = 0; i < nodes.size(); ++i) {
    EXPECT_LE(std::abs(per[i] - mean), 0.10 * mean)
        << nodes[i] << " holds " << per[i] << " shards, mean " << mean << " (" << nodes.size() << " nodes)";
  }
}

}  // namespace

TEST(Placement, HashFunctionsAreTheDocumentedOnes) {
  // FNV-1a 64 test vectors.
  EXPECT_EQ(ac::fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(ac::fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(ac::fnv1a64("foobar"), 0x85944171f73967e8ull);
  // splitmix64: the first output for seed 0 is mix64(0).
  EXPECT_EQ(ac::mix64(0), 0xe220a8397b1dcdafull);
  // Pinned: changing these moves every actor of every deployed cluster.
  EXPECT_EQ(ac::shard_of("BankAccount", "acc-1", 1024),
            ac::mix64(ac::fnv1a64(std::string("BankAccount\0acc-1", 17))) % 1024);
  EXPECT_EQ(ac::shard_of("BankAccount", "acc-1", 1u << 31), 1098864487u);
  EXPECT_EQ(ac::shard_of("Order", "o-1", 65536), 35565u);
}

TEST(Placement, ShardOfSpreadsActorsEvenly) {
  std::vector<uint32_t> per(256, 0);
  for (int i = 0; i < 256 * 1000; ++i) ++per[ac::shard_of("Counter", "c-" + std::to_string(i), 256)];
  // Chi-square against the uniform distribution, 255 degrees of freedom: a
  // good hash lands near 255; above 350 happens by chance about once in 10^4.
  double chi2 = 0;
  for (uint32_t n : per) chi2 += (n - 1000.0) * (n - 1000.0) / 1000.0;
  EXPECT_LT(chi2, 350.0);
  EXPECT_GT(chi2, 170.0) << "too even to be a hash";
  // The type matters: the same id of two types is not bound to one shard.
  int same = 0;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = "x" + std::to_string(i);
    same += ac::shard_of("A", id, 1024) == ac::shard_of("B", id, 1024);
  }
  EXPECT_LT(same, 10);
}

TEST(Placement, BalancedWithinTenPercentFrom3To50Nodes) {
  for (uint32_t n = 3; n <= 50; ++n) {
    SCOPED_TRACE(std::to_string(n) + " nodes");
    const auto nodes = node_ids(n);
    const auto plan = ac::rebalance({}, nodes, kShards, kVnodes);
    ASSERT_EQ(plan.owners.size(), kShards);
    expect_balanced(plan.owners, nodes);
    EXPECT_EQ(plan.moves.size(), kShards) << "from nothing, every shard is placed";
  }
}

TEST(Placement, JoinAndLeaveMoveAtMost1_1xTheOptimal) {
  for (uint32_t n = 3; n <= 50; ++n) {
    SCOPED_TRACE(std::to_string(n) + " nodes");
    const auto nodes = node_ids(n);
    const auto base = ac::rebalance({}, nodes, kShards, kVnodes);

    // Join: the optimum moves 1/(n+1) of the shards, all to the new node.
    auto joined_nodes = node_ids(n + 1);
    const auto join = ac::rebalance(base.owners, joined_nodes, kShards, kVnodes);
    expect_balanced(join.owners, joined_nodes);
    const double optimal_join = static_cast<double>(kShards) / (n + 1);
    EXPECT_LE(join.moves.size(), 1.1 * optimal_join) << "join moved " << join.moves.size();
    for (const auto& m : join.moves) EXPECT_EQ(m.to, "node-" + std::to_string(n)) << "shard " << m.shard;

    // Leave (each position in turn for a few): only the leaver's shards move.
    for (uint32_t gone : {0u, n / 2, n - 1}) {
      std::vector<std::string> rest = nodes;
      rest.erase(rest.begin() + gone);
      const auto leave = ac::rebalance(base.owners, rest, kShards, kVnodes);
      expect_balanced(leave.owners, rest);
      const auto held = ac::shards_per_node(base.owners, {nodes[gone]})[0];
      EXPECT_LE(leave.moves.size(), 1.1 * held) << "leave of " << nodes[gone] << " moved " << leave.moves.size();
      for (const auto& m : leave.moves) EXPECT_EQ(m.from, nodes[gone]) << "shard " << m.shard;
    }
  }
}

TEST(Placement, MovesDescribeExactlyTheChangedShards) {
  const auto a = ac::rebalance({}, node_ids(5), 512, kVnodes);
  const auto b = ac::rebalance(a.owners, node_ids(7), 512, kVnodes);
  std::set<uint32_t> moved;
  for (const auto& m : b.moves) {
    EXPECT_EQ(m.from, a.owners[m.shard]);
    EXPECT_EQ(m.to, b.owners[m.shard]);
    EXPECT_NE(m.from, m.to);
    moved.insert(m.shard);
  }
  for (uint32_t s = 0; s < 512; ++s) {
    EXPECT_EQ(moved.count(s) == 1, a.owners[s] != b.owners[s]) << "shard " << s;
  }
}

TEST(Placement, NodeOrderAndDuplicatesDoNotMatter) {
  auto nodes = node_ids(9);
  const auto sorted = ac::rebalance({}, nodes, kShards, kVnodes);
  std::mt19937 rng(7);
  std::shuffle(nodes.begin(), nodes.end(), rng);
  nodes.push_back(nodes.front());
  EXPECT_EQ(ac::rebalance({}, nodes, kShards, kVnodes).owners, sorted.owners);
}

TEST(Placement, RebalanceIsStableWhenNothingChanged) {
  const auto nodes = node_ids(6);
  const auto a = ac::rebalance({}, nodes, kShards, kVnodes);
  const auto b = ac::rebalance(a.owners, nodes, kShards, kVnodes);
  EXPECT_TRUE(b.moves.empty());
  EXPECT_EQ(a.owners, b.owners);
}

TEST(Placement, DeadOwnersAndResizedMapsAreRepaired) {
  std::vector<std::string> current(kShards, "ghost");
  current[3] = "node-1";
  const auto nodes = node_ids(4);
  const auto plan = ac::rebalance(current, nodes, kShards, kVnodes);
  expect_balanced(plan.owners, nodes);
  EXPECT_EQ(plan.owners[3], "node-1") << "a live owner keeps its shard";
  EXPECT_EQ(plan.moves.size(), kShards - 1);

  const auto none = ac::rebalance(plan.owners, {}, kShards, kVnodes);
  EXPECT_EQ(none.owners, std::vector<std::string>(kShards)) << "no live node, no owner";
  EXPECT_TRUE(none.moves.empty());

  const auto fewer_shards_than_nodes = ac::rebalance({}, node_ids(10), 4, kVnodes);
  std::set<std::string> owners(fewer_shards_than_nodes.owners.begin(), fewer_shards_than_nodes.owners.end());
  EXPECT_EQ(owners.size(), 4u) << "no node holds two shards while others hold none";
}

TEST(Placement, IdenticalAcrossProcesses) {
  const std::vector<std::string> nodes = {"n-b", "n-a", "n-c", "n-e", "n-d"};
  // The child gets the nodes in another order.
  std::string cmd = std::string(PLACEMENT_DUMP) + " 4096 64 n-e n-d n-c n-b n-a";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  size_t got = 0;
  while ((got = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, got);
  ASSERT_EQ(pclose(p), 0) << out;

  std::string mine;
  char line[256];
  for (const char* id : {"acc-1", "acc-2", "order-77", ""}) {
    std::snprintf(line, sizeof line, "actor %s %u\n", id, ac::shard_of("BankAccount", id, 4096));
    mine += line;
  }
  const auto plan = ac::rebalance({}, nodes, 4096, 64);
  for (uint32_t s = 0; s < plan.owners.size(); ++s) {
    std::snprintf(line, sizeof line, "shard %u %s\n", s, plan.owners[s].c_str());
    mine += line;
  }
  EXPECT_EQ(out, mine);
}
