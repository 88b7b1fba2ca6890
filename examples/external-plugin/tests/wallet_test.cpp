// Unit tests of the wallet's decide/apply with the SDK's FakeHost: no host,
// no files, the plugin's code linked into the test.
#include <aether/testing.hpp>
#include <gtest/gtest.h>

extern "C" aether_status aether_plugin_entry(const aether_host_api*,
                                             const aether_type_plugin_def**);

namespace {

TEST(Wallet, DepositsAndWithdrawals) {
  aether::testing::FakeHost host(aether_plugin_entry);
  auto w = host.actor("Wallet", "w1");
  auto r = w.send("Deposit", R"({"amount":30})");
  ASSERT_TRUE(r.ok()) << r.message;
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].name, "Deposited");
  ASSERT_TRUE(w.send("Withdraw", R"({"amount":12})").ok());
  EXPECT_EQ(w.view().output, R"({"balance":18})");
  EXPECT_EQ(w.version(), 2u);
}

TEST(Wallet, RefusesToGoBelowZero) {
  aether::testing::FakeHost host(aether_plugin_entry);
  auto w = host.actor("Wallet", "w2");
  ASSERT_TRUE(w.send("Deposit", R"({"amount":5})").ok());
  auto r = w.send("Withdraw", R"({"amount":6})");
  EXPECT_TRUE(r.rejected());
  EXPECT_EQ(r.code, "insufficient_funds");
  EXPECT_EQ(w.view().output, R"({"balance":5})");
}

TEST(Wallet, RejectsBadAmounts) {
  aether::testing::FakeHost host(aether_plugin_entry);
  auto w = host.actor("Wallet", "w3");
  EXPECT_FALSE(w.send("Deposit", R"({"amount":0})").ok());
  EXPECT_FALSE(w.send("Deposit", R"({})").ok());
  EXPECT_EQ(w.version(), 0u);
}

}  // namespace
