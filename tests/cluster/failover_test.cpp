// cluster.failover_after: a host killed with SIGKILL loses its shards to
// the others while its membership key has not expired yet (a node TTL of
// 60 s here, failover after 1 s), and the commands for those shards are
// served by the new owners meanwhile. The TTL is long so that a slow
// (sanitizer) build still ends the test before the dead host's key expires.
#include <gtest/gtest.h>

#include "support/cluster_harness.hpp"
#include "support/wait.hpp"

namespace aether {
namespace {

using json = nlohmann::json;

class FailoverTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.nats_ready()) << cluster_.nats_why();
    cluster_.set_env("AETHER_SHARDS", "64");
    cluster_.set_env("AETHER_FAILOVER_AFTER", "1s");
    std::string why;
    ASSERT_TRUE(cluster_.start_nodes(3, &why)) << why;
  }

  // As `via` sees it: `dead` still a member (its key not expired) and
  // owning no shard, every shard owned.
  bool failed_over(const std::string& via, const std::string& dead) {
    const json s = cluster_.status(via);
    if (!s.is_object() || s["unowned_shards"] != 0 || !s["migrations"].empty()) return false;
    for (const auto& n : s["nodes"]) {
      if (n["id"] == dead) return n["shards"] == 0;
    }
    return false;
  }

  test::ClusterHarness cluster_{60000, "500ms"};
};

TEST_F(FailoverTest, AKilledHostsShardsMoveBeforeItsTtl) {
  // Not the leader: its lease, like the membership, lasts the TTL.
  const std::string leader = cluster_.status("node-1")["leader"];
  const std::string victim = leader == "node-3" ? "node-2" : "node-3";
  const std::string survivor = leader;
  cluster_.stop_host(victim, true);
  // Bounded: well inside the 60 s TTL.
  const bool moved = test::eventually([&] { return failed_over(survivor, victim); }, 30, 50);
  ASSERT_TRUE(moved) << cluster_.status(survivor).dump(1);
  // Every actor answers, those of the dead host's shards included.
  httplib::Client c("127.0.0.1", cluster_.host(survivor).port());
  c.set_read_timeout(10, 0);
  for (int a = 0; a < 32; ++a) {
    auto r = c.Post("/v1/default/actors/Counter/fo-" + std::to_string(a) + "/commands",
                    R"({"command":"Increment","payload":{"by":1}})", "application/json");
    ASSERT_TRUE(r) << "fo-" << a;
    EXPECT_EQ(r->status, 200) << "fo-" << a << ": " << r->body;
  }
  EXPECT_TRUE(failed_over(survivor, victim)) << "the dead host's key expired before the test ended";
}

}  // namespace
}  // namespace aether
