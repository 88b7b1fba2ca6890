// Prints a placement computed in this process, for placement_test to compare
// with its own: `placement_dump SHARDS VNODES NODE...` prints, per line, the
// shard of a few fixed actors and then the owner of every shard.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cluster/placement.hpp"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: placement_dump SHARDS VNODES NODE...\n");
    return 2;
  }
  const auto shards = static_cast<uint32_t>(std::strtoul(argv[1], nullptr, 10));
  const auto vnodes = static_cast<uint32_t>(std::strtoul(argv[2], nullptr, 10));
  std::vector<std::string> nodes(argv + 3, argv + argc);
  for (const char* id : {"acc-1", "acc-2", "order-77", ""}) {
    std::printf("actor %s %u\n", id, aether::cluster::shard_of("BankAccount", id, shards));
  }
  const auto plan = aether::cluster::rebalance({}, nodes, shards, vnodes);
  for (uint32_t s = 0; s < plan.owners.size(); ++s) std::printf("shard %u %s\n", s, plan.owners[s].c_str());
  return 0;
}
