// The installed testkit's public API (host/testkit/include/aether/testkit.hpp,
// libaethertestkit) against the test plugin "tally": the helpers plugin
// authors rely on, with the cases the out-of-tree example does not reach
// (a failing swap step under load, a throwing load plan, a data directory
// shared by two hosts one after the other).
#include <aether/testkit.hpp>
#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

namespace {

using aether::testkit::Host;

std::string tp(const std::string& name) {
  return std::string(AETHER_TEST_PLUGIN_DIR) + "/" + name + ".so";
}

aether::testkit::Command add_one(unsigned t, uint64_t i) {
  return {"Tally", "t" + std::to_string(t) + "-" + std::to_string(i % 4), "Add", R"({"n":1})"};
}

// A load of Add n=1 on the plugin "tally", swapping to `swaps` in turn.
aether::testkit::LoadPlan tally_plan(std::vector<std::string> swaps, bool rollback,
                                     unsigned threads, uint64_t commands) {
  aether::testkit::LoadPlan plan;
  plan.plugin = "tally";
  plan.swaps = std::move(swaps);
  plan.rollback = rollback;
  plan.threads = threads;
  plan.commands = commands;
  plan.command = add_one;
  return plan;
}

TEST(Testkit, SwapRollbackUnderLoadKeepsEveryCount) {
  Host host;
  ASSERT_EQ(host.load(tp("tally_v1")), "");
  const auto report = host.swap_under_load(tally_plan({tp("tally_v2")}, true, 4, 4000));
  ASSERT_EQ(report.steps.size(), 2u);
  EXPECT_TRUE(report.all_steps_ok()) << report.steps[0].error << report.steps[1].error;
  EXPECT_EQ(report.steps[0].via_upgrade + report.steps[0].via_snapshot + report.steps[0].via_replay,
            report.steps[0].actors_migrated);
  EXPECT_EQ(report.steps[1].via_replay, report.steps[1].actors_migrated);
  EXPECT_EQ(report.sent, 4000u);
  EXPECT_EQ(report.ok, 4000u);
  EXPECT_EQ(report.failed, 0u) << (report.failures.empty() ? "" : report.failures[0]);
  EXPECT_EQ(host.version("tally"), "1.0.0");
  for (int t = 0; t < 4; ++t) {
    for (int a = 0; a < 4; ++a) {
      EXPECT_EQ(host.view("Tally", "t" + std::to_string(t) + "-" + std::to_string(a)),
                R"({"count":250})");
    }
  }
}

TEST(Testkit, AFailedSwapStepIsReportedAndFailsNoCommand) {
  Host host;
  ASSERT_EQ(host.load(tp("tally_v1")), "");
  const auto report = host.swap_under_load(tally_plan({tp("tally_upgrade_fails")}, false, 2, 400));
  ASSERT_EQ(report.steps.size(), 1u);
  EXPECT_FALSE(report.all_steps_ok());
  EXPECT_NE(report.steps[0].error.find("upgrade"), std::string::npos) << report.steps[0].error;
  EXPECT_EQ(report.failed, 0u);
  EXPECT_EQ(host.version("tally"), "1.0.0");
}

TEST(Testkit, ALoadPlanThatThrowsCountsAsFailed) {
  Host host;
  ASSERT_EQ(host.load(tp("tally_v1")), "");
  auto plan = tally_plan({}, false, 2, 10);
  plan.command = [](unsigned t, uint64_t i) {
    if (i == 3) throw std::runtime_error("no command 3");
    return add_one(t, i);
  };
  const auto report = host.swap_under_load(plan);
  EXPECT_EQ(report.sent, 10u);
  EXPECT_EQ(report.ok, 8u);
  ASSERT_EQ(report.failed, 2u);
  EXPECT_NE(report.failures[0].find("no command 3"), std::string::npos) << report.failures[0];
}

TEST(Testkit, RepliesStatesAndErrorsArePlainValues) {
  Host host;
  EXPECT_NE(host.load(tp("no_such_plugin")), "");
  ASSERT_EQ(host.load(tp("tally_v1")), "");
  auto r = host.send("Tally", "a", "Add", R"({"n":2})");
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.version, 1u);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].type, "Added");
  EXPECT_EQ(host.send("Tally", "a", "Sub", R"({"n":5})").reject_code, "below_zero");
  EXPECT_EQ(host.send("Tally", "a", "Add", R"({"n":"x"})").code, "invalid_argument");
  EXPECT_EQ(host.send("Nope", "a", "Add").code, "not_found");
  EXPECT_FALSE(host.state("Tally", "never").found);
  EXPECT_TRUE(host.swap("tally", tp("no_such_plugin")).error.size() > 0);
  EXPECT_FALSE(host.rollback("tally").ok());  // nothing to roll back to
  host.passivate_all();
  EXPECT_EQ(host.state("Tally", "a").view, R"({"count":2})");
}

TEST(Testkit, AGivenDataDirectoryOutlivesItsHost) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("aether-testkit-test-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  aether::testkit::Options options;
  options.store = "sqlite";
  options.data_dir = dir.string();
  {
    Host first(options);
    ASSERT_EQ(first.load(tp("tally_v1")), "");
    ASSERT_TRUE(first.send("Tally", "kept", "Add", R"({"n":9})").ok());
  }
  ASSERT_TRUE(std::filesystem::exists(dir / "aether.db"));
  {
    Host second(options);
    EXPECT_EQ(second.data_dir(), dir.string());
    ASSERT_EQ(second.load(tp("tally_v1")), "");
    EXPECT_EQ(second.view("Tally", "kept"), R"({"count":9})");
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
