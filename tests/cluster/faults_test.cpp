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

#include <future>
#include <iostream>
#include <set>

#include "support/fault_runner.hpp"

namespace aether {
namespace {

constexpr int kActors = 24;

class FaultsTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.nats_ready()) << cluster_.nats_why();
    cluster_.set_env("AETHER_REPLICAS", "3");
    cluster_.set_env("AETHER_SHARDS", "64");
    configure();
    std::string why;
    ASSERT_TRUE(cluster_.start_nodes(3, &why)) << why;
  }
  // More environment for the nodes of a test's fixture.
  virtual void configure() {}

  test::ClusterHarness cluster_{3000, "500ms"};
};

// Hosts that leave a nats-server that stopped answering after two pings 1 s
// apart (nats.ping_interval): with the default of 2 minutes, the host on a
// paused server stays cut off from NATS for the whole pause, and once the
// others' heartbeats have been taken for a whole TTL without its own, it is
// rightly taken for dead.
class FaultsQuickPingTest : public FaultsTest {
 protected:
  void configure() override { cluster_.set_env("AETHER_NATS_PING_INTERVAL", "1s"); }
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
  if (HasFailure()) std::cout << cluster_.hosts_state();
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

// The nats-server leading the members bucket pauses for longer than the
// node TTL: no heartbeat is taken until the bucket has a leader again, so
// every member's key expires unrefreshed. That is no member's death: the
// shard map stays as it was (a node takes a member for dead only once its
// own heartbeats have been taken for a whole TTL). The host on the paused
// server leaves it for another (FaultsQuickPingTest) and takes heartbeats
// again with the others.
TEST_F(FaultsQuickPingTest, APausedMembersBucketLeaderTakesNoMemberForDead) {
  test::HistoryLoad load(cluster_.nats(0).url(), 4);
  load.start();
  test::FaultRunner faults(cluster_, load);
  const std::string bucket = "KV_AETHER_CLUSTER_NODES";
  // s2 or s3: the load and node-1 (read below) stay on s1.
  const size_t paused_server = faults.lead_off_s1(bucket);
  ASSERT_NE(paused_server, 0u) << "the bucket's leader could not be moved off s1";
  ASSERT_TRUE(test::eventually([&] { return cluster_.converged(3); }, test::kWaitSeconds, 100));
  const auto before = cluster_.status("node-1");
  ASSERT_TRUE(before.is_object());
  {
    test::Paused paused(cluster_.nats(paused_server).pid());
    std::this_thread::sleep_for(std::chrono::milliseconds(8000));
  }
  // Time for the bucket to elect a leader and for a leader round to act.
  std::this_thread::sleep_for(std::chrono::milliseconds(6000));
  load.stop();
  for (const auto& id : cluster_.running()) {
    const auto st = cluster_.status(id);
    ASSERT_TRUE(st.is_object()) << id;
    EXPECT_EQ(st["nodes"].size(), 3u) << id << ": " << st.dump();
    EXPECT_EQ(st["epoch"], before["epoch"]) << id << ": the shard map changed: " << st.dump();
  }
}

// A paused nats-server keeps its clients' connections open. A host with a
// short nats.ping_interval leaves it for another server of the cluster once
// nats.max_pings_out pings go unanswered, while the server is still paused.
TEST(PingTest, AHostLeavesANatsServerThatStoppedAnswering) {
  test::ClusterHarness cluster_{3000, "500ms"};
  ASSERT_TRUE(cluster_.nats_ready()) << cluster_.nats_why();
  cluster_.set_env("AETHER_REPLICAS", "3");
  cluster_.set_env("AETHER_SHARDS", "64");
  cluster_.set_env("AETHER_NATS_PING_INTERVAL", "1s");
  std::string why;
  ASSERT_TRUE(cluster_.start_nodes(3, &why)) << why;
  const std::string own = cluster_.nats(1).url();  // node-2 was started on s2
  const std::string before = cluster_.host("node-2").log();
  ASSERT_EQ(before.find("nats: reconnected"), std::string::npos) << before;
  std::string moved_to;
  {
    test::Paused paused(cluster_.nats(1).pid());
    test::eventually([&] {
      const std::string log = cluster_.host("node-2").log();
      const size_t at = log.find("nats: reconnected to ");
      if (at == std::string::npos) return false;
      moved_to = log.substr(at + 21, log.find('\n', at) - at - 21);
      return true;
    }, 20);
  }
  EXPECT_FALSE(moved_to.empty()) << "node-2 did not leave its paused nats-server " << own;
  EXPECT_NE(moved_to, own);
  // Every actor, those of node-2's shards among them, is served afterwards.
  test::HistoryLoad load(cluster_.nats(0).url(), kActors);
  load.start();
  EXPECT_TRUE(test::eventually([&] {
    std::set<int> acked;
    for (const auto& s : load.history()) {
      if (s.version != 0) acked.insert(s.actor);
    }
    return acked.size() == static_cast<size_t>(kActors);
  }));
  load.stop();
}

// The consumer behind a node's members watcher is deleted on the server
// (as a NATS outage loses it). The watcher then delivers none of the
// node's own heartbeats; the node watches the bucket anew, and a node that
// joins afterwards is seen by every member.
TEST(MembersWatchTest, AWatcherWhoseConsumerIsGoneIsReplaced) {
  test::ClusterHarness cluster_{3000, "500ms"};
  ASSERT_TRUE(cluster_.nats_ready()) << cluster_.nats_why();
  cluster_.set_env("AETHER_REPLICAS", "3");
  cluster_.set_env("AETHER_SHARDS", "64");
  std::string why;
  ASSERT_TRUE(cluster_.start_nodes(2, &why)) << why;
  const std::string renewed = "watching the members bucket anew";
  const auto renewals = [&](const std::string& id) {
    const std::string log = cluster_.host(id).log();
    size_t n = 0;
    for (size_t at = log.find(renewed); at != std::string::npos; at = log.find(renewed, at + 1)) ++n;
    return n;
  };
  const std::map<std::string, size_t> before = {{"node-1", renewals("node-1")}, {"node-2", renewals("node-2")}};
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&nc, cluster_.nats(0).url().c_str()), NATS_OK);
  ASSERT_EQ(natsConnection_JetStream(&js, nc, nullptr), NATS_OK);
  const char* stream = "KV_AETHER_CLUSTER_NODES";
  jsConsumerNamesList* names = nullptr;
  ASSERT_EQ(js_ConsumerNames(&names, js, stream, nullptr, nullptr), NATS_OK);
  EXPECT_GE(names->Count, 2) << "one watcher per node";
  for (int i = 0; i < names->Count; ++i) {
    EXPECT_EQ(js_DeleteConsumer(js, stream, names->List[i], nullptr, nullptr), NATS_OK) << names->List[i];
  }
  jsConsumerNamesList_Destroy(names);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  for (const std::string id : {"node-1", "node-2"}) {
    EXPECT_TRUE(test::eventually([&] { return renewals(id) > before.at(id); }))
        << id << " kept a watcher that delivers nothing:\n" << cluster_.host(id).log();
  }
  ASSERT_NE(cluster_.start_host("node-3", &why), nullptr) << why;
  EXPECT_TRUE(cluster_.wait_converged(3, 60)) << cluster_.last_status().dump(1);
}

// The metric aether_cluster_retried_commands_total of the host on `port`
// (-1: not read).
double retried_commands(int port) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(5, 0);
  auto r = c.Get("/metrics");
  if (!r || r->status != 200) return -1;
  const std::string name = "\naether_cluster_retried_commands_total ";
  const size_t at = r->body.find(name);
  return at == std::string::npos ? -1 : std::atof(r->body.c_str() + at + name.size());
}

// A command that fails before anything is stored, for a cause that passes
// (here the host's only NATS server is down: its connection is lost), is
// run again by the owning node while its deadline allows, instead of being
// answered 503 at once.
TEST(PassingFailureTest, ACommandWaitsOutItsNatsServersRestart) {
  test::NatsServer nats;
  test::TempDir dir;
  test::HostProcess host({"--config", std::string(AETHER_SOURCE_DIR) + "/config/cluster.yaml"},
                         {{"NATS_URL", nats.url()},
                          {"AETHER_LISTEN", "127.0.0.1:0"},
                          {"AETHER_PLUGIN_DIR", AETHER_PLUGIN_DIR},
                          {"AETHER_NODE_ID", "node-1"},
                          {"AETHER_NODE_TTL", "30s"},
                          {"AETHER_HEARTBEAT", "500ms"},
                          {"AETHER_ROUTE_WAIT", "30s"},
                          {"AETHER_LOG_LEVEL", "info"}},
                         dir.file("node-1.log"));
  ASSERT_TRUE(host.start()) << host.log();
  httplib::Client c("127.0.0.1", host.port());
  c.set_read_timeout(60, 0);
  const std::string path = "/v1/default/actors/Counter/waits/commands";
  const std::string body = R"({"command":"Increment","payload":{"by":1}})";
  int first = 0;
  ASSERT_TRUE(test::eventually([&] {
    auto r = c.Post(path, body, "application/json");
    if (!r || r->status != 200) return false;
    first = nlohmann::json::parse(r->body, nullptr, false).value("version", 0);
    return true;
  })) << host.log();
  const double before = retried_commands(host.port());
  ASSERT_GE(before, 0) << "no retried-commands metric";
  nats.kill9();
  auto during = std::async(std::launch::async, [&] { return c.Post(path, body, "application/json"); });
  // The command is held and run again while NATS is away.
  EXPECT_TRUE(test::eventually([&] { return retried_commands(host.port()) > before; })) << host.log();
  ASSERT_TRUE(nats.start());
  auto r = during.get();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  const auto j = nlohmann::json::parse(r->body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r->body;
  EXPECT_EQ(j.value("version", 0), first + 1) << r->body;
}

}  // namespace
}  // namespace aether
