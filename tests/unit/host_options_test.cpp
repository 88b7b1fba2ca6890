// Each module states its options' defaults once, in its own options struct;
// the configuration (config/config.hpp, its sections' structs) states them
// again for `--check-config` and the docs. These tests hold the two equal: a
// default HostConfig, mapped to each module's options by app/options.hpp,
// gives exactly that module's default options. They also check that every
// config key reaches its module (bus.subscriber_queue), and that a host's
// metrics count its sqlite store's commit batches (what runtime_bench reads).
#include <gtest/gtest.h>
#include <nats/nats.h>

#include <mutex>

#include "api/metrics.hpp"
#include "app/host.hpp"
#include "app/options.hpp"
#include "bus/bus.hpp"
#include "config/config.hpp"
#include "plugin/plugin.hpp"
#include "support/nats_server.hpp"
#include "support/temp_dir.hpp"

namespace aether {
namespace {

#define EXPECT_SAME(field) EXPECT_EQ(from_config.field, own.field) << #field

TEST(HostOptionDefaults, RuntimeOptions) {
  const RuntimeOptions from_config = runtime_options(HostConfig{});
  const RuntimeOptions own;
  EXPECT_SAME(namespaces); EXPECT_SAME(workers); EXPECT_SAME(io_threads); EXPECT_SAME(max_active_actors);
  EXPECT_SAME(idle_timeout_ms); EXPECT_SAME(mailbox_capacity); EXPECT_SAME(conflict_retries); EXPECT_SAME(call_timeout_ms);
  EXPECT_SAME(max_stuck_calls); EXPECT_SAME(snapshot.every); EXPECT_SAME(snapshot.keep); EXPECT_SAME(idempotency.keys);
  EXPECT_SAME(idempotency.age_ms); EXPECT_SAME(node_id); EXPECT_SAME(types.size());
}

TEST(HostOptionDefaults, ClusterOptions) {
  PluginRegistry none;
  const ClusterOptions from_config = cluster_options(HostConfig{}, none);
  const ClusterOptions own;
  EXPECT_SAME(node_id); EXPECT_SAME(bucket_prefix); EXPECT_SAME(shards); EXPECT_SAME(vnodes);
  EXPECT_SAME(node_ttl_ms); EXPECT_SAME(heartbeat_ms); EXPECT_SAME(max_moves); EXPECT_SAME(handoff_timeout_ms);
  EXPECT_SAME(route_wait_ms); EXPECT_SAME(forward_timeout_ms); EXPECT_SAME(replicas);
}

TEST(HostOptionDefaults, NatsOptions) {
  const NatsOptions own, from_config = nats_options(HostConfig{});
  EXPECT_EQ(from_config.name, own.name + " " + HostConfig{}.node.id);  // the node id is appended
  EXPECT_SAME(servers);
  EXPECT_SAME(user); EXPECT_SAME(password); EXPECT_SAME(token); EXPECT_SAME(credentials_file);
  EXPECT_SAME(tls_ca); EXPECT_SAME(tls_cert); EXPECT_SAME(tls_key); EXPECT_SAME(max_reconnect);
  EXPECT_SAME(reconnect_wait_ms); EXPECT_SAME(connect_timeout_ms); EXPECT_SAME(request_timeout_ms);
  EXPECT_SAME(ping_interval_ms); EXPECT_SAME(max_pings_out);
}

TEST(HostOptionDefaults, StoreOptions) {
  const JetStreamOptions from_config = jetstream_options(HostConfig{});
  const JetStreamOptions own;
  EXPECT_SAME(namespaces); EXPECT_SAME(stream_prefix); EXPECT_SAME(replicas); EXPECT_SAME(storage);
  EXPECT_SAME(max_age_ms); EXPECT_SAME(max_bytes); EXPECT_SAME(duplicate_window_ms); EXPECT_SAME(node_id);
  EXPECT_SAME(publishers);
  const SqliteOptions sqlite = sqlite_options(HostConfig{});
  const SqliteOptions sqlite_own;
  EXPECT_EQ(sqlite.synchronous, sqlite_own.synchronous);
  EXPECT_EQ(sqlite.max_batch, sqlite_own.max_batch);
  EXPECT_EQ(sqlite.outbox, sqlite_own.outbox);
  EXPECT_EQ(sqlite.node_id, sqlite_own.node_id);
}

TEST(HostOptionDefaults, HttpOptions) {
  const HttpOptions from_config = http_options(HostConfig{});
  const HttpOptions own;
  EXPECT_SAME(host); EXPECT_SAME(port); EXPECT_SAME(max_body_bytes); EXPECT_SAME(bearer_token);
  EXPECT_SAME(threads); EXPECT_SAME(node_id); EXPECT_SAME(header_timeout_ms); EXPECT_SAME(idle_timeout_ms);
  EXPECT_SAME(request_timeout_ms); EXPECT_SAME(max_connections); EXPECT_SAME(max_header_bytes); EXPECT_SAME(max_header_count);
  EXPECT_SAME(allowed_origins); EXPECT_SAME(max_json_depth); EXPECT_SAME(max_event_streams); EXPECT_SAME(event_stream_queue);
}

TEST(HostOptionDefaults, SwapAndBusOptions) {
  const SwapOptions from_config = swap_options(HostConfig{});
  const SwapOptions own;
  EXPECT_SAME(allow_breaking); EXPECT_SAME(pause_timeout_ms);
  EXPECT_EQ(bus_options(HostConfig{}).subscriber_queue, BusOptions{}.subscriber_queue);
}

TEST(BusSection, SubscriberQueueBoundsTheHostsSubscriptions) {
  test::TempDir plugins;  // plugins.dir must exist
  auto c = parse_config("plugins:\n  dir: " + plugins.path().string() + "\nbus:\n  subscriber_queue: 4\n", "test.yaml");
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  auto bus = make_local_bus(bus_options(*c));
  std::mutex gate;
  gate.lock();  // the handler blocks until released: the queue fills up
  auto slow = bus->subscribe("x.>", [&](const Message&) { std::lock_guard l(gate); });
  for (int i = 0; i < 100; ++i) bus->publish({"x.y", "{}"});
  EXPECT_GE(slow->dropped(), 100u - 4u - 1u) << "at most 4 queued (and 1 in the handler)";
  gate.unlock();
}

TEST(HostMetrics, CountTheSqliteStoresCommitBatches) {
  test::TempDir dir;
  HostConfig c;
  c.source = "<test>";
  c.store.backend = "sqlite";
  c.store.sqlite_path = (dir.path() / "aether.db").string();
  c.api.http_enabled = false;
  c.plugins.dir = (dir.path() / "plugins").string();
  auto host = Host::start(c);
  ASSERT_TRUE(host.is_ok()) << host.status().to_string();
  EXPECT_EQ((*host)->metrics().commit_batches().appends, 0u);
  for (int i = 0; i < 3; ++i) {
    AppendRequest r;
    r.key = {"default", "Counter", "c" + std::to_string(i)};
    r.events.push_back({"Incremented", R"({"by":1})"});
    ASSERT_TRUE((*host)->store().append_sync(std::move(r)).status.is_ok());
  }
  const Metrics::CommitBatches b = (*host)->metrics().commit_batches();
  EXPECT_EQ(b.appends, 3u) << "one append per request";
  EXPECT_GE(b.batches, 1u);
  EXPECT_LE(b.batches, 3u);
  EXPECT_TRUE((*host)->stop().is_ok());
}

// Host::start returns once the server has taken the ingress's
// subscriptions: a client on another connection is answered at once, never
// told that nobody serves the subject. (Each round starts a fresh host.)
TEST(HostNatsIngress, AnswersARequestRightAfterStart) {
  test::TempDir dir;
  test::NatsServer server;
  natsConnection* client = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&client, server.url().c_str()), NATS_OK);
  for (int round = 0; round < 10; ++round) {
    HostConfig c;
    c.source = "<test>";
    c.api.http_enabled = false;
    c.plugins.dir = (dir.path() / "plugins").string();
    c.nats.enabled = true;
    c.nats.servers = {server.url()};
    auto host = Host::start(c);
    ASSERT_TRUE(host.is_ok()) << host.status().to_string();
    natsMsg* reply = nullptr;
    const char body[] = R"({"command":"Increment","payload":{}})";
    const natsStatus s = natsConnection_Request(&reply, client, "aether.default.cmd.Counter.c1", body,
                                                static_cast<int>(sizeof(body) - 1), 5000);
    EXPECT_EQ(s, NATS_OK) << "round " << round << ": " << natsStatus_GetText(s);
    natsMsg_Destroy(reply);
    EXPECT_TRUE((*host)->stop().is_ok());
  }
  natsConnection_Destroy(client);
}

}  // namespace
}  // namespace aether
