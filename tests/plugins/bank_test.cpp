// The bank plugin through the SDK's fake host (testing.hpp).
#include <aether/testing.hpp>
#include <gtest/gtest.h>

extern "C" aether_status aether_plugin_entry(const aether_host_api*,
                                             const aether_type_plugin_def**);

namespace {

using aether::testing::FakeHost;

TEST(BankPlugin, OpenDepositWithdrawClose) {
  FakeHost host(aether_plugin_entry);
  EXPECT_STREQ(host.plugin().name, "bank");
  auto acct = host.actor("BankAccount", "acc-1");
  auto r = acct.send("Open", R"({"owner":"ann"})");
  ASSERT_TRUE(r.ok()) << r.message;
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].name, "Opened");
  EXPECT_EQ(r.events[0].payload, R"({"owner":"ann"})");
  ASSERT_TRUE(acct.send("Deposit", R"({"amount":100})").ok());
  ASSERT_TRUE(acct.send("Withdraw", R"({"amount":30})").ok());
  EXPECT_EQ(acct.version(), 3u);
  EXPECT_EQ(acct.view().output, R"({"balance":70,"closed":false,"open":true,"owner":"ann"})");
  ASSERT_TRUE(acct.send("Withdraw", R"({"amount":70})").ok());
  r = acct.send("Close");
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.events[0].name, "Closed");
}

TEST(BankPlugin, RejectionsCarryCodeAndMessage) {
  FakeHost host(aether_plugin_entry);
  auto acct = host.actor("BankAccount", "acc-2");
  auto r = acct.send("Deposit", R"({"amount":10})");
  EXPECT_TRUE(r.rejected());
  EXPECT_EQ(r.code, "account_not_open");
  EXPECT_EQ(r.message, "account is not open");

  ASSERT_TRUE(acct.send("Open", R"({"owner":"bob"})").ok());
  r = acct.send("Open", R"({"owner":"bob"})");
  EXPECT_EQ(r.code, "already_open");

  ASSERT_TRUE(acct.send("Deposit", R"({"amount":10})").ok());
  r = acct.send("Withdraw", R"({"amount":11})");
  EXPECT_TRUE(r.rejected());
  EXPECT_EQ(r.code, "insufficient_funds");
  EXPECT_EQ(r.message, "insufficient funds: balance 10, requested 11");
  EXPECT_TRUE(r.events.empty());

  r = acct.send("Close");
  EXPECT_EQ(r.code, "balance_not_zero");
  EXPECT_EQ(acct.version(), 2u) << "rejections must not change the actor";
}

TEST(BankPlugin, BadInputIsNotARejection) {
  FakeHost host(aether_plugin_entry);
  auto acct = host.actor("BankAccount", "acc-3");
  ASSERT_TRUE(acct.send("Open", R"({"owner":"cy"})").ok());
  auto r = acct.send("Deposit", R"({"amount":-5})");
  EXPECT_EQ(r.status, AETHER_ERR_BAD_INPUT);
  EXPECT_EQ(r.message, "field 'amount' must be a positive integer");
  r = acct.send("Deposit", R"({})");
  EXPECT_EQ(r.status, AETHER_ERR_BAD_INPUT);
  EXPECT_EQ(r.message, "missing field 'amount'");
  r = acct.send("Deposit", R"({"amount":"ten"})");
  EXPECT_EQ(r.message, "field 'amount': expected an integer between -9223372036854775808 and "
                       "9223372036854775807, got \"ten\"");
  r = acct.send("Deposit", R"({"amount":)");
  EXPECT_EQ(r.status, AETHER_ERR_BAD_INPUT);
  EXPECT_NE(r.message.find("parse error"), std::string::npos) << r.message;
  r = acct.send("Steal");  // answered as the host answers it
  EXPECT_EQ(r.error, "not_found");
  EXPECT_EQ(r.message, "unknown command 'Steal' for actor type BankAccount");
}

TEST(BankPlugin, SnapshotRestoreRoundTrip) {
  FakeHost host(aether_plugin_entry);
  auto acct = host.actor("BankAccount", "acc-4");
  ASSERT_TRUE(acct.send("Open", R"({"owner":"dee"})").ok());
  ASSERT_TRUE(acct.send("Deposit", R"({"amount":250})").ok());
  auto snap = acct.snapshot();
  ASSERT_TRUE(snap.ok()) << snap.message;
  auto copy = host.restore("BankAccount", "acc-4", snap.output);
  EXPECT_EQ(copy.view().output, acct.view().output);
  auto r = copy.send("Withdraw", R"({"amount":251})");
  EXPECT_EQ(r.code, "insufficient_funds");
  EXPECT_TRUE(copy.send("Withdraw", R"({"amount":250})").ok());
  EXPECT_THROW(host.restore("BankAccount", "x", "{not json"), std::runtime_error);
}

// A balance never wraps: a deposit past INT64_MAX is a domain rejection,
// and amounts that are not int64 integers are bad input.
TEST(BankPlugin, BalanceNeverOverflows) {
  FakeHost host(aether_plugin_entry);
  auto acct = host.actor("BankAccount", "acc-5");
  ASSERT_TRUE(acct.send("Open", R"({"owner":"eve"})").ok());
  ASSERT_TRUE(acct.send("Deposit", R"({"amount":9223372036854775807})").ok());
  auto r = acct.send("Deposit", R"({"amount":1})");
  EXPECT_TRUE(r.rejected());
  EXPECT_EQ(r.code, "balance_overflow");
  EXPECT_NE(r.message.find("9223372036854775807"), std::string::npos) << r.message;
  for (const char* amount : {"9223372036854775808", "18446744073709551615", "1e30", "2.5"}) {
    r = acct.send("Deposit", std::string(R"({"amount":)") + amount + "}");
    EXPECT_EQ(r.status, AETHER_ERR_BAD_INPUT) << amount;
    EXPECT_EQ(r.message, "field 'amount' must be an integer between 1 and 9223372036854775807") << amount;
  }
  EXPECT_EQ(acct.version(), 2u);
  EXPECT_EQ(acct.view().output, R"({"balance":9223372036854775807,"closed":false,"open":true,"owner":"eve"})");
}

}  // namespace
