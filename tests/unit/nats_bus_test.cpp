// The NATS bus against a real nats-server: shared, reference-counted NATS
// subscriptions; messages are published and delivered as they are.
#include <gtest/gtest.h>
#include <nats/nats.h>

#include <atomic>
#include <thread>

#include "bus/nats_bus.hpp"
#include "nats/connection.hpp"
#include "support/nats_connect.hpp"
#include "support/nats_server.hpp"
#include "support/wait.hpp"

namespace aether {
namespace {

using test::eventually;

TEST(NatsBus, SubscriptionsAreSharedAndReferenceCounted) {
  test::NatsServer server;
  auto conn = test::connect(server);
  NatsBus bus(*conn);
  std::atomic<int> a{0}, b{0};
  auto s1 = bus.subscribe("aether.default.events.>", [&](const Message&) { a.fetch_add(1); });
  auto s2 = bus.subscribe("aether.default.events.>", [&](const Message&) { b.fetch_add(1); });
  EXPECT_EQ(bus.nats_subscriptions(), 1u) << "one NATS subscription per pattern";
  auto s3 = bus.subscribe("aether.other.>", [](const Message&) {});
  EXPECT_EQ(bus.nats_subscriptions(), 2u);
  natsConnection_Flush(conn->nc());

  // A message reaches both local subscribers, this bus's own included.
  NatsBus other(*conn);
  other.publish({"aether.default.events.Counter.c1", R"({"node":"node-2"})"});
  EXPECT_TRUE(eventually([&] { return a.load() == 1 && b.load() == 1; }));
  bus.publish({"aether.default.events.Counter.c1", R"({"node":"node-1"})"});
  EXPECT_TRUE(eventually([&] { return a.load() == 2 && b.load() == 2; }));

  s1.reset();
  EXPECT_EQ(bus.nats_subscriptions(), 2u) << "s2 still needs the shared subscription";
  s2.reset();
  EXPECT_EQ(bus.nats_subscriptions(), 1u) << "the last local subscriber took the NATS one along";
  s3.reset();
  EXPECT_EQ(bus.nats_subscriptions(), 0u);
}

TEST(NatsBus, PublishesMessagesAsTheyAre) {
  // The memory backend's commits on a host with NATS go out through the bus:
  // one NATS message per publish, subject and bytes unchanged.
  test::NatsServer server;
  auto conn = test::connect(server);
  natsSubscription* sub = nullptr;
  ASSERT_EQ(natsConnection_SubscribeSync(&sub, conn->nc(), "aether.default.>"), NATS_OK);
  natsConnection_Flush(conn->nc());
  NatsBus bus(*conn);
  bus.publish({"aether.default.events.Counter.c1", R"({"commit":1})"});
  natsMsg* m = nullptr;
  ASSERT_EQ(natsSubscription_NextMsg(&m, sub, 2000), NATS_OK);
  EXPECT_STREQ(natsMsg_GetSubject(m), "aether.default.events.Counter.c1");
  EXPECT_EQ(std::string(natsMsg_GetData(m), static_cast<size_t>(natsMsg_GetDataLength(m))), R"({"commit":1})");
  natsMsg_Destroy(m);
  natsSubscription_Destroy(sub);
}

}  // namespace
}  // namespace aether
