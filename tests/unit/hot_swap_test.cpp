// Hot swap: replacing a plugin in a running host, state preserved, through
// the testkit's in-process host (the same helper plugin authors use).
#include <gtest/gtest.h>
#include <malloc.h>

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "plugin/plugin.hpp"
#include "runtime/plugin_manager.hpp"
#include "support/plugin_files.hpp"
#include "support/swap_load.hpp"
#include "support/wait.hpp"
#include "testkit/test_host.hpp"

namespace aether {
namespace {

using json = nlohmann::json;
using testkit::TestHost;
using testkit::TestHostOptions;

auto* const tp = &test::test_plugin;

TestHostOptions options(const std::string& store = "memory") {
  TestHostOptions o;
  o.store = store;
  o.runtime.workers = 4;
  return o;
}

// The test host is wired like aether-host (app/host.hpp): it locks its data
// directory, so a second host over the same directory at the same time fails
// to start, naming the directory (testkit_test: one after the other they
// share the data).
TEST(TestHostWiring, LocksItsDataDirectoryLikeAetherHost) {
  TestHostOptions o = options("sqlite");
  auto first = std::make_unique<TestHost>(o);
  ASSERT_TRUE(first->load(tp("tally_v1")).is_ok());
  ASSERT_TRUE(first->send("Tally", "kept", "Add", R"({"n":4})").status.is_ok());
  o.dir = first->dir();
  try {
    TestHost second(o);
    ADD_FAILURE() << "a second host started over a locked data directory";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(o.dir), std::string::npos) << e.what();
  }
  EXPECT_EQ(json::parse(first->view("Tally", "kept"))["count"], 4) << "the first host serves on";
}

class HotSwap : public testing::TestWithParam<std::string> {};

// 8 threads send commands while the plugin is swapped from v1 to v2 (new
// behaviour, new state schema). No command may fail except by a domain
// rejection, every actor's state carries over, the next command shows the
// new behaviour, and the old image is unmapped.
TEST_P(HotSwap, UnderLoadFromEightThreads) {
  TestHost host(options(GetParam()));
  ASSERT_TRUE(host.load(tp("tally_v1")).is_ok());
  const std::string v1_file = host.loaded_file("tally");
  ASSERT_TRUE(TestHost::is_mapped(v1_file));

  // The senders run until stopped (100,000 rounds is far more than they
  // reach), so the swap happens under load however long it takes (a slow
  // sanitizer build once finished a fixed load before the swap did).
  test::SwapLoad load(host, {"default"}, 8, 25, 100000);
  load.start();
  Result<SwapReport> report = Status::internal("not swapped");
  load.around(2000, [&] { report = host.swap("tally", tp("tally_v2")); }, 2000);
  ASSERT_TRUE(report.is_ok()) << report.status().to_string();
  EXPECT_EQ(load.failures(), 0);
  EXPECT_EQ(report->from_version, "1.0.0");
  EXPECT_EQ(report->to_version, "2.0.0");
  EXPECT_GT(report->actors_migrated, 0u);
  EXPECT_EQ(report->via_upgrade, report->actors_migrated) << "schema 1 -> 2 goes through upgrade_state";
  EXPECT_EQ(host.version("tally"), "2.0.0");
  for (int t = 0; t < load.threads(); ++t) {
    for (int a = 0; a < load.actors(); ++a) {
      const json v = json::parse(host.view("Tally", test::SwapLoad::id(t, a)));
      EXPECT_EQ(v["total"], load.expected(0, t, a)) << test::SwapLoad::id(t, a);
      EXPECT_EQ(v["v"], 2) << test::SwapLoad::id(t, a);
    }
  }
  // The new behaviour: v1 accepted any n, v2 refuses n > 1000.
  auto r = host.send("Tally", "t0-0", "Add", R"({"n":5000})");
  EXPECT_EQ(r.status.code(), StatusCode::kRejected);
  EXPECT_EQ(r.reject_code, "too_large");
  EXPECT_FALSE(TestHost::is_mapped(v1_file)) << "v1 is still mapped after the swap";
  EXPECT_EQ(host.plugin_mappings(), 1);
  // And it survives a restart: activation upgrades or skips v1 snapshots.
  host.restart();
  EXPECT_EQ(json::parse(host.view("Tally", "t3-7"))["total"], load.expected(0, 3, 7));
}

TEST_P(HotSwap, AnotherSchemaWithoutUpgradeReplaysEvents) {
  TestHost host(options(GetParam()));
  ASSERT_TRUE(host.load(tp("tally_v1")).is_ok());
  for (int i = 1; i <= 10; ++i) ASSERT_TRUE(host.send("Tally", "r", "Add", R"({"n":)" + std::to_string(i) + "}").status.is_ok());
  ASSERT_TRUE(host.send("Tally", "r", "Sub", R"({"n":5})").status.is_ok());
  auto report = host.swap("tally", tp("tally_v2_noupgrade"));
  ASSERT_TRUE(report.is_ok()) << report.status().to_string();
  EXPECT_EQ(report->via_replay, 1u);
  // Replayed through v2's reducers: ops counts every event.
  EXPECT_EQ(host.view("Tally", "r"), R"({"ops":11,"total":50,"v":2})");
}

TEST_P(HotSwap, SameSchemaMovesBySnapshot) {
  TestHost host(options(GetParam()));
  ASSERT_TRUE(host.load(tp("tally_v1")).is_ok());
  ASSERT_TRUE(host.send("Tally", "s", "Add", R"({"n":700})").status.is_ok());
  auto r = host.swap("tally", tp("tally_v1_1"));
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->via_snapshot, 1u);
  EXPECT_EQ(r->via_upgrade + r->via_replay, 0u);
  EXPECT_EQ(host.view("Tally", "s"), R"({"count":700})");
  EXPECT_EQ(host.send("Tally", "s", "Add", R"({"n":700})").reject_code, "too_large") << "1.1.0 behaviour";
}

TEST_P(HotSwap, RollbackReturnsToThePreviousVersion) {
  TestHost host(options(GetParam()));
  ASSERT_TRUE(host.load(tp("tally_v1")).is_ok());
  ASSERT_TRUE(host.send("Tally", "s", "Add", R"({"n":7})").status.is_ok());
  auto up = host.swap("tally", tp("tally_v2"));
  ASSERT_TRUE(up.is_ok()) << up.status().to_string();
  ASSERT_TRUE(host.send("Tally", "s", "Add", R"({"n":3})").status.is_ok());
  EXPECT_EQ(host.view("Tally", "s"), R"({"ops":1,"total":10,"v":2})");
  auto back = host.rollback("tally");
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->to_version, "1.0.0");
  EXPECT_EQ(back->via_replay, 1u) << "v1 has no upgrade from schema 2: it replays";
  EXPECT_EQ(host.view("Tally", "s"), R"({"count":10})");
  EXPECT_TRUE(host.send("Tally", "s", "Add", R"({"n":5000})").status.is_ok()) << "v1 behaviour again";
  auto none = host.rollback("tally");
  ASSERT_FALSE(none.is_ok());
  EXPECT_NE(none.status().message().find("no previous version"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Stores, HotSwap, testing::Values("memory", "sqlite"),
                         [](const testing::TestParamInfo<std::string>& i) { return i.param; });

struct BrokenCase {
  const char* name;
  const char* plugin;
  const char* message;
};

class BrokenSwap : public testing::TestWithParam<BrokenCase> {};

TEST_P(BrokenSwap, IsAbortedAndV1KeepsServing) {
  TestHost host(options());
  ASSERT_TRUE(host.load(tp("tally_v1")).is_ok());
  ASSERT_TRUE(host.send("Tally", "b", "Add", R"({"n":40})").status.is_ok());
  const std::string v1_file = host.loaded_file("tally");
  auto r = host.swap("tally", tp(GetParam().plugin));
  ASSERT_FALSE(r.is_ok()) << GetParam().name << " was accepted";
  EXPECT_NE(r.status().message().find(GetParam().message), std::string::npos)
      << "wanted '" << GetParam().message << "' in: " << r.status().message();
  EXPECT_EQ(host.version("tally"), "1.0.0");
  EXPECT_EQ(host.loaded_file("tally"), v1_file);
  EXPECT_EQ(host.view("Tally", "b"), R"({"count":40})");
  auto after = host.send("Tally", "b", "Add", R"({"n":2000})");
  EXPECT_TRUE(after.status.is_ok()) << "v1 must keep serving: " << after.status.to_string();
  EXPECT_EQ(host.view("Tally", "b"), R"({"count":2040})");
  EXPECT_EQ(host.plugin_mappings(), 1) << "the refused image must be unloaded";
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BrokenSwap,
    testing::Values(
        BrokenCase{"WrongAbiMajor", "tally_abi2", "built for aether ABI 2.0, but this host speaks ABI 1.0"},
        BrokenCase{"MissingActorType", "tally_missing_type",
                   "drops what version 1.0.0 has: actor type Tally is missing"},
        BrokenCase{"RestoreThrows", "tally_restore_throws", "restore refuses this snapshot"},
        BrokenCase{"UpgradeFails", "tally_upgrade_fails", "upgrade_state cannot read schema 1"},
        BrokenCase{"NotAPlugin", "no_entry", "entry symbol 'aether_plugin_entry' is missing"},
        BrokenCase{"AnotherPlugin", "faulty", "is plugin faulty, not tally"}),
    [](const testing::TestParamInfo<BrokenCase>& i) { return std::string(i.param.name); });

TEST(HotSwapLeaks, TwentySwapsBackAndForthLeaveNoMappingsOrGrowth) {
  TestHost host(options());
  ASSERT_TRUE(host.load(tp("tally_v1")).is_ok());
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(host.send("Tally", "l" + std::to_string(i), "Add", R"({"n":1})").status.is_ok());
  auto cycle = [&] {
    auto a = host.swap("tally", tp("tally_v2"));
    ASSERT_TRUE(a.is_ok()) << a.status().to_string();
    auto b = host.rollback("tally");
    ASSERT_TRUE(b.is_ok()) << b.status().to_string();
  };
  for (int i = 0; i < 3; ++i) cycle();  // warm-up: caches, first-use allocations
  malloc_trim(0);
  const size_t heap_before = mallinfo2().uordblks;
  for (int i = 0; i < 10; ++i) cycle();  // 20 swaps
  malloc_trim(0);
  const size_t heap_after = mallinfo2().uordblks;
  EXPECT_EQ(host.plugin_mappings(), 1) << "only the current image may stay mapped";
  EXPECT_EQ(host.version("tally"), "1.0.0");
  EXPECT_LT(heap_after, heap_before + 256 * 1024)
      << "heap grew by " << (heap_after - heap_before) << " bytes over 20 swaps";
  for (int i = 0; i < 50; i += 7) EXPECT_EQ(host.view("Tally", "l" + std::to_string(i)), R"({"count":1})");
}

TEST(HotSwapWatch, ChangedFileIsReloaded) {
  TestHost host(options());
  const std::string dir = host.plugins().copy_dir().parent_path().string();
  const std::string source = dir + "/tally.so";
  std::filesystem::copy_file(tp("tally_v1"), source);
  ASSERT_TRUE(host.load(source).is_ok());
  ASSERT_TRUE(host.send("Tally", "w", "Add", R"({"n":9})").status.is_ok());
  host.plugins().start_watching(std::chrono::milliseconds(20));
  // A build writes the new image over the old file.
  std::filesystem::copy_file(tp("tally_v2"), source, std::filesystem::copy_options::overwrite_existing);
  test::eventually([&] { return host.version("tally") == "2.0.0"; });
  EXPECT_EQ(host.version("tally"), "2.0.0");
  EXPECT_EQ(host.view("Tally", "w"), R"({"ops":0,"total":9,"v":2})");
  host.plugins().stop_watching();
}

}  // namespace
}  // namespace aether
