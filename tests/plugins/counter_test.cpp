// The plain-C counter plugin through the SDK's fake host.
#include <aether/testing.hpp>
#include <gtest/gtest.h>

extern "C" aether_status aether_plugin_entry(const aether_host_api*,
                                             const aether_type_plugin_def**);

namespace {

using aether::testing::FakeHost;

TEST(CounterPlugin, IncrementDecrementReset) {
  FakeHost host(aether_plugin_entry);
  EXPECT_STREQ(host.plugin().name, "counter");
  auto c = host.actor("Counter", "c-1");
  auto r = c.send("Increment");
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.events[0].payload, R"({"by":1})");
  ASSERT_TRUE(c.send("Increment", R"({"by": 41})").ok());
  EXPECT_EQ(c.view().output, R"({"value":42})");
  ASSERT_TRUE(c.send("Decrement", R"({"by":2})").ok());
  EXPECT_EQ(c.view().output, R"({"value":40})");
  ASSERT_TRUE(c.send("Reset").ok());
  EXPECT_EQ(c.view().output, R"({"value":0})");
  EXPECT_EQ(c.version(), 4u);
}

TEST(CounterPlugin, Rejections) {
  FakeHost host(aether_plugin_entry);
  auto c = host.actor("Counter", "c-2");
  auto r = c.send("Decrement");
  EXPECT_TRUE(r.rejected());
  EXPECT_EQ(r.code, "would_go_negative");
  EXPECT_EQ(r.message, "counter cannot go below zero");
  r = c.send("Increment", R"({"by":"x"})");
  EXPECT_EQ(r.status, AETHER_ERR_BAD_INPUT);
  EXPECT_EQ(r.message, "field 'by' must be an integer");
  r = c.send("Increment", R"({"by":0})");
  EXPECT_EQ(r.message, "field 'by' must be positive");
  EXPECT_EQ(c.version(), 0u);
}

TEST(CounterPlugin, SnapshotRestoreRoundTrip) {
  FakeHost host(aether_plugin_entry);
  auto c = host.actor("Counter", "c-3");
  ASSERT_TRUE(c.send("Increment", R"({"by":7})").ok());
  auto snap = c.snapshot();
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap.output, R"({"value":7})");
  auto copy = host.restore("Counter", "c-3", snap.output);
  EXPECT_EQ(copy.view().output, R"({"value":7})");
  EXPECT_THROW(host.restore("Counter", "c", "garbage"), std::runtime_error);
}

// The counter stays within 0..INT64_MAX: two increments by INT64_MAX used
// to wrap it to -2.
TEST(CounterPlugin, NeverOverflows) {
  FakeHost host(aether_plugin_entry);
  auto c = host.actor("Counter", "c-4");
  ASSERT_TRUE(c.send("Increment", R"({"by":9223372036854775807})").ok());
  auto r = c.send("Increment", R"({"by":9223372036854775807})");
  EXPECT_TRUE(r.rejected());
  EXPECT_EQ(r.code, "would_overflow");
  r = c.send("Increment");
  EXPECT_EQ(r.code, "would_overflow");
  r = c.send("Increment", R"({"by":9223372036854775808})");
  EXPECT_EQ(r.status, AETHER_ERR_BAD_INPUT);
  EXPECT_EQ(r.message, "field 'by' must be at most 9223372036854775807");
  EXPECT_EQ(c.view().output, R"({"value":9223372036854775807})");
  ASSERT_TRUE(c.send("Decrement", R"({"by":9223372036854775807})").ok());
  EXPECT_EQ(c.view().output, R"({"value":0})");
  EXPECT_EQ(c.version(), 2u);
}

}  // namespace
