// Faults against a real cluster: 3 nats-servers (streams with 3 replicas)
// and 3 aether-host nodes under a steady load of uniquely numbered commands
// with unique idempotency keys (tests/support/history_load.hpp). The faults
// (tests/support/fault_runner.hpp): SIGSTOP of the nats-server leading the
// store's streams, of one leading only a cluster bucket, kill -9 of a
// nats-server and its restart, SIGSTOP of a host, SIGTERM of a host, a join,
// kill -9 of a host; each lasts a few seconds (cluster_fault_bench runs the
// longer variant and reports the figures against the goals). At the end
// every actor's history is read from every node and checked: every
// acknowledged command once, at the version it was acknowledged with; no
// event that was not sent, none of a command answered "not applied"; all
// nodes agree. The error window and the indeterminate outcomes per fault are
// printed.
#include <gtest/gtest.h>

#include <iostream>

#include "support/fault_runner.hpp"

namespace aether {
namespace {

constexpr int kActors = 24;

class FaultsTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.nats_ready());
    cluster_.set_env("AETHER_REPLICAS", "3");
    cluster_.set_env("AETHER_SHARDS", "64");
    std::string why;
    ASSERT_TRUE(cluster_.start_nodes(3, &why)) << why;
  }

  test::ClusterHarness cluster_{3000, "500ms"};
};

TEST_F(FaultsTest, FaultsLoseNoAcknowledgedCommandAndInventNone) {
  test::HistoryLoad load(cluster_.nats(0).url(), kActors);
  load.start();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  std::vector<test::Phase> phases;
  {
    test::FaultRunner faults(cluster_, load);
    phases = faults.run_all(test::FaultPlan{});
  }
  load.stop();
  const auto sent = load.history();
  uint64_t acked = 0;
  for (const auto& s : sent) acked += s.version != 0;
  for (const auto& p : phases) {
    const auto f = test::figures(sent, kActors, p);
    std::cout << test::describe(p, f) << "\n";
    EXPECT_EQ(f.routing_loops, 0) << p.fault;
  }
  std::cout << sent.size() << " commands, " << acked << " acknowledged\n";
  EXPECT_GT(acked, 0u);
  std::map<std::string, int> nodes;
  for (const auto& id : cluster_.running()) nodes[id] = cluster_.host(id).port();
  for (const auto& a : test::check_history(nodes, kActors, sent)) ADD_FAILURE() << a;
}

// The nats-server leading the events stream pauses twice under commands
// with idempotency keys. A publish left without an answer is still in its
// pipeline when it resumes; the actor's next commit carried the same
// expected sequence and nats-server 2.9 stored both (two commits of one
// version: the actor could no longer be read). The store now settles a
// commit in doubt before the actor's next one.
TEST_F(FaultsTest, PausedStreamLeaderLeavesNoVersionTwice) {
  test::HistoryLoad load(cluster_.nats(0).url(), kActors);
  load.start();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  {
    test::FaultRunner faults(cluster_, load);
    for (int i = 0; i < 2; ++i) {
      const auto p = faults.pause_nats(faults.arrange_stream_leader(), 3000, "the store's stream leader");
      std::cout << test::describe(p, test::figures(load.history(), kActors, p)) << "\n";
    }
  }
  load.stop();
  std::map<std::string, int> nodes;
  for (const auto& id : cluster_.running()) nodes[id] = cluster_.host(id).port();
  for (const auto& a : test::check_history(nodes, kActors, load.history())) ADD_FAILURE() << a;
}

}  // namespace
}  // namespace aether
