// The order plugin's state machine through the SDK's fake host.
#include <aether/testing.hpp>
#include <gtest/gtest.h>

extern "C" aether_status aether_plugin_entry(const aether_host_api*,
                                             const aether_type_plugin_def**);

namespace {

using aether::testing::FakeActor;
using aether::testing::FakeHost;

FakeActor placed_with_line(const FakeHost& host, const char* id) {
  auto o = host.actor("Order", id);
  EXPECT_TRUE(o.send("Place", R"({"customer":"c-1"})").ok());
  EXPECT_TRUE(o.send("AddLine", R"({"sku":"tea","quantity":2,"unit_price":350})").ok());
  return o;
}

TEST(OrderPlugin, HappyPath) {
  FakeHost host(aether_plugin_entry);
  auto o = placed_with_line(host, "o-1");
  ASSERT_TRUE(o.send("AddLine", R"({"sku":"cup","quantity":1,"unit_price":1200})").ok());
  auto r = o.send("Pay", R"({"amount":1900})");
  ASSERT_TRUE(r.ok()) << r.message;
  r = o.send("Ship", R"({"carrier":"dhl"})");
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(o.version(), 5u);
  EXPECT_NE(o.view().output.find(R"("status":"shipped")"), std::string::npos);
  EXPECT_NE(o.view().output.find(R"("total":1900)"), std::string::npos);
}

TEST(OrderPlugin, StateMachineRejections) {
  FakeHost host(aether_plugin_entry);
  auto fresh = host.actor("Order", "o-2");
  auto r = fresh.send("AddLine", R"({"sku":"tea","quantity":1,"unit_price":1})");
  EXPECT_EQ(r.code, "invalid_state");
  EXPECT_EQ(r.message, "cannot add a line to an order that is new");
  EXPECT_EQ(fresh.send("Ship").code, "invalid_state");
  EXPECT_EQ(fresh.send("Cancel").message, "cannot cancel an order that is new");

  auto empty = host.actor("Order", "o-3");
  ASSERT_TRUE(empty.send("Place", R"({"customer":"c"})").ok());
  EXPECT_EQ(empty.send("Pay", R"({"amount":0})").code, "empty_order");
  EXPECT_EQ(empty.send("Place", R"({"customer":"c"})").message,
            "cannot place an order that is placed");

  auto o = placed_with_line(host, "o-4");
  r = o.send("Pay", R"({"amount":1})");
  EXPECT_EQ(r.code, "wrong_amount");
  EXPECT_EQ(r.message, "payment of 1 does not match the total 700");
  EXPECT_EQ(o.send("Ship").message, "cannot ship an order that is placed");
  ASSERT_TRUE(o.send("Pay", R"({"amount":700})").ok());
  EXPECT_EQ(o.send("AddLine", R"({"sku":"x","quantity":1,"unit_price":1})").message,
            "cannot add a line to an order that is paid");
  ASSERT_TRUE(o.send("Ship").ok());
  EXPECT_EQ(o.send("Cancel").message, "cannot cancel an order that is shipped");
}

TEST(OrderPlugin, CancelAfterPaymentRefunds) {
  FakeHost host(aether_plugin_entry);
  auto o = placed_with_line(host, "o-5");
  ASSERT_TRUE(o.send("Pay", R"({"amount":700})").ok());
  auto r = o.send("Cancel", R"({"reason":"changed mind"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.events[0].payload, R"({"reason":"changed mind","refund":700})");
  EXPECT_EQ(o.send("Pay", R"({"amount":700})").code, "invalid_state");
}

TEST(OrderPlugin, BadLines) {
  FakeHost host(aether_plugin_entry);
  auto o = host.actor("Order", "o-6");
  ASSERT_TRUE(o.send("Place", R"({"customer":"c"})").ok());
  auto r = o.send("AddLine", R"({"sku":"tea","quantity":0,"unit_price":1})");
  EXPECT_EQ(r.status, AETHER_ERR_BAD_INPUT);
  EXPECT_EQ(r.message, "field 'quantity' must be positive");
  r = o.send("AddLine", R"({"sku":"tea","quantity":1})");
  EXPECT_EQ(r.message, "missing field 'unit_price'");
}

TEST(OrderPlugin, SnapshotRestoreRoundTrip) {
  FakeHost host(aether_plugin_entry);
  auto o = placed_with_line(host, "o-7");
  ASSERT_TRUE(o.send("Pay", R"({"amount":700})").ok());
  auto snap = o.snapshot();
  ASSERT_TRUE(snap.ok());
  auto copy = host.restore("Order", "o-7", snap.output);
  EXPECT_EQ(copy.view().output, o.view().output);
  EXPECT_TRUE(copy.send("Ship").ok());
}

}  // namespace
