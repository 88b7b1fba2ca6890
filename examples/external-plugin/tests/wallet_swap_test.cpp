// Upgrade tests of the wallet: the built plugin files (WALLET_V1, WALLET_V2,
// paths set by CMakeLists.txt) in a real aether host inside this process.
#include <aether/testkit.hpp>
#include <gtest/gtest.h>

#include <map>
#include <string>

namespace {

using aether::testkit::Host;

std::string balance_of(const std::string& view) {
  // {"balance":N} (v1) or {"balance":N,"operations":K} (v2)
  const auto at = view.find("\"balance\":");
  if (at == std::string::npos) return "no balance in " + view;
  const auto start = at + 10;
  return view.substr(start, view.find_first_of(",}", start) - start);
}

TEST(WalletSwap, V2KeepsEveryBalance) {
  Host host;
  ASSERT_EQ(host.load(WALLET_V1), "");
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(host.send("Wallet", "w" + std::to_string(i), "Deposit",
                          R"({"amount":)" + std::to_string(100 + i) + "}")
                    .ok());
  }
  auto report = host.swap("wallet", WALLET_V2);
  ASSERT_TRUE(report.ok()) << report.error;
  EXPECT_EQ(report.to_version, "2.0.0");
  EXPECT_EQ(report.via_upgrade, 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(host.view("Wallet", "w" + std::to_string(i)),
              R"({"balance":)" + std::to_string(100 + i) + R"(,"operations":0})");
  }
}

TEST(WalletSwap, RollbackReplaysAndRestartKeepsTheData) {
  aether::testkit::Options options;
  options.store = "sqlite";
  Host host(options);
  ASSERT_EQ(host.load(WALLET_V1), "");
  ASSERT_TRUE(host.send("Wallet", "a", "Deposit", R"({"amount":50})").ok());
  ASSERT_TRUE(host.swap("wallet", WALLET_V2).ok());
  ASSERT_TRUE(host.send("Wallet", "a", "Withdraw", R"({"amount":20})").ok());
  EXPECT_EQ(host.view("Wallet", "a"), R"({"balance":30,"operations":1})");

  auto back = host.rollback("wallet");
  ASSERT_TRUE(back.ok()) << back.error;
  EXPECT_EQ(back.to_version, "1.0.0");
  EXPECT_EQ(back.via_replay, 1u);  // v1 cannot read schema 2: it replays the events
  EXPECT_EQ(host.view("Wallet", "a"), R"({"balance":30})");

  host.restart();
  EXPECT_EQ(host.view("Wallet", "a"), R"({"balance":30})");
  const auto events = host.events("Wallet", "a");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].type, "Withdrawn");
  EXPECT_EQ(events[1].payload, R"({"amount":20})");
}

// Thread t owns the wallets "t<t>-0" .. "t<t>-9"; every third command
// withdraws (and may be refused), the others deposit.
aether::testkit::Command load_command(unsigned t, uint64_t i) {
  const std::string id = "t" + std::to_string(t) + "-" + std::to_string(i % 10);
  if (i % 3 == 2) return {"Wallet", id, "Withdraw", R"({"amount":)" + std::to_string(i % 7 + 1) + "}"};
  return {"Wallet", id, "Deposit", R"({"amount":)" + std::to_string(i % 11 + 1) + "}"};
}

TEST(WalletSwap, SwapAndRollbackUnderLoadLoseNothing) {
  Host host;
  ASSERT_EQ(host.load(WALLET_V1), "");
  aether::testkit::LoadPlan plan;
  plan.plugin = "wallet";
  plan.swaps = {WALLET_V2};
  plan.rollback = true;
  plan.threads = 8;
  plan.commands = 20000;
  plan.command = load_command;
  const aether::testkit::LoadReport report = host.swap_under_load(plan);

  ASSERT_EQ(report.steps.size(), 2u);
  EXPECT_TRUE(report.all_steps_ok()) << report.steps[0].error << report.steps[1].error;
  EXPECT_EQ(report.steps[0].to_version, "2.0.0");
  EXPECT_EQ(report.steps[1].to_version, "1.0.0");
  EXPECT_EQ(report.sent, 20000u);
  EXPECT_EQ(report.failed, 0u) << (report.failures.empty() ? "" : report.failures[0]);

  // The same commands, one after another, in a plain model.
  std::map<std::string, int64_t> model;
  uint64_t refused = 0;
  for (unsigned t = 0; t < plan.threads; ++t) {
    for (uint64_t i = 0; i < plan.commands / plan.threads; ++i) {
      const auto c = load_command(t, i);
      const int64_t amount = std::stoll(c.payload.substr(10));
      int64_t& balance = model[c.id];
      if (c.name == "Deposit") {
        balance += amount;
      } else if (amount <= balance) {
        balance -= amount;
      } else {
        ++refused;
      }
    }
  }
  EXPECT_EQ(report.rejected, refused);
  for (const auto& [id, balance] : model) {
    EXPECT_EQ(balance_of(host.view("Wallet", id)), std::to_string(balance)) << id;
  }
}

}  // namespace
