// Per-namespace plugin versions (canaries) in a running host: a new version
// on one namespace under load, promoted to all, and one namespace rolled
// back alone (runtime/plugin_versions.hpp, docs/hot-swap.md).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "plugin/plugin.hpp"
#include "runtime/plugin_manager.hpp"
#include "support/plugin_files.hpp"
#include "support/swap_load.hpp"
#include "testkit/test_host.hpp"

namespace aether {
namespace {

using json = nlohmann::json;
using testkit::TestHost;
using testkit::TestHostOptions;

auto* const tp = &test::test_plugin;

TestHostOptions options(const std::string& store) {
  TestHostOptions o;
  o.store = store;
  o.runtime.workers = 4;
  o.runtime.namespaces = {"default", "staging"};
  o.shadow = ShadowOptions{};
  return o;
}

ReloadRequest request(std::vector<std::string> namespaces, std::string file = {}) {
  ReloadRequest r;
  r.plugin = "tally";
  r.file = std::move(file);
  r.namespaces = std::move(namespaces);
  return r;
}

std::string version_of(TestHost& host, const std::string& ns) {
  auto p = host.registry().version_for("tally", ns);
  return p ? p->version() : "";
}

// Every actor of namespace index `ns` of `load` shows `field` at its total.
void expect_totals(TestHost& host, const test::SwapLoad& load, size_t ns, const std::string& name,
                   const std::string& field) {
  for (int t = 0; t < load.threads(); ++t) {
    for (int a = 0; a < load.actors(); ++a) {
      const std::string id = test::SwapLoad::id(t, a);
      const json v = json::parse(host.view("Tally", id, name), nullptr, false);
      ASSERT_TRUE(v.is_object() && v.contains(field)) << name << "/" << id << ": " << host.view("Tally", id, name);
      EXPECT_EQ(v[field], load.expected(ns, t, a)) << name << "/" << id;
    }
  }
}

class Canary : public testing::TestWithParam<std::string> {};

// v2 on staging while 8 threads send to both namespaces: no command fails,
// only staging's actors are checked, paused and moved; then v2 is promoted
// to every namespace, and staging alone is rolled back to v1.
TEST_P(Canary, OnStagingUnderLoadThenPromotedThenStagingRolledBack) {
  TestHost host(options(GetParam()));
  ASSERT_TRUE(host.load(tp("tally_v1")).is_ok());
  const std::string v1_file = host.loaded_file("tally");

  // Rounds enough to outlast the swap; the load stops once commands have
  // run after it.
  test::SwapLoad load(host, {"default", "staging"}, 8, 25, 100000);
  load.start();
  load.wait_for_commands(4000);
  ReloadCheck check;
  auto canary = host.plugins().reload(request({"staging"}, tp("tally_v2_exact")), &check);
  const int finished_at_swap = load.finished_threads();
  load.wait_for_commands(host.runtime().stats().commands_ok + 4000);
  load.stop();
  load.join();
  ASSERT_TRUE(canary.is_ok()) << canary.status().to_string();
  EXPECT_EQ(finished_at_swap, 0) << "the swap must happen under load";
  EXPECT_EQ(load.failures(), 0);
  EXPECT_EQ(canary->to_version, "2.1.0-exact");
  const uint64_t per_namespace = static_cast<uint64_t>(load.threads()) * load.actors();
  EXPECT_EQ(canary->actors_migrated, per_namespace) << "staging's actors move, default's do not";
  ASSERT_TRUE(check.ran);
  EXPECT_TRUE(check.report.passed()) << check.report.to_json();
  EXPECT_LE(check.report.stored_actors, per_namespace) << "the check samples staging only";
  for (const auto& d : check.report.differences) EXPECT_EQ(d.actor.ns, "staging");

  EXPECT_EQ(version_of(host, "default"), "1.0.0");
  EXPECT_EQ(version_of(host, "staging"), "2.1.0-exact");
  EXPECT_TRUE(TestHost::is_mapped(v1_file)) << "default still runs v1";
  EXPECT_EQ(host.plugin_mappings(), 2) << "both versions stay mapped";
  expect_totals(host, load, 0, "default", "count");
  expect_totals(host, load, 1, "staging", "total");

  ReloadRequest promote;
  promote.plugin = "tally";
  promote.promote_from = "staging";
  auto promoted = host.plugins().reload(promote);
  ASSERT_TRUE(promoted.is_ok()) << promoted.status().to_string();
  EXPECT_EQ(promoted->from_version, "1.0.0");
  EXPECT_EQ(promoted->to_version, "2.1.0-exact");
  EXPECT_EQ(promoted->actors_migrated, per_namespace) << "default's actors move; staging's run it already";
  EXPECT_EQ(version_of(host, "default"), "2.1.0-exact");
  EXPECT_TRUE(host.registry().namespace_versions("tally").empty());
  EXPECT_FALSE(TestHost::is_mapped(v1_file)) << "no namespace runs v1 any more: it is unloaded";
  EXPECT_EQ(host.plugin_mappings(), 1);
  expect_totals(host, load, 0, "default", "total");
  expect_totals(host, load, 1, "staging", "total");

  ReloadRequest back = request({"staging"});
  back.to_previous = true;
  auto rolled = host.plugins().reload(back);
  ASSERT_TRUE(rolled.is_ok()) << rolled.status().to_string();
  EXPECT_EQ(rolled->to_version, "1.0.0");
  EXPECT_EQ(rolled->actors_migrated, per_namespace) << "staging's actors only";
  EXPECT_EQ(version_of(host, "staging"), "1.0.0");
  EXPECT_EQ(version_of(host, "default"), "2.1.0-exact");
  expect_totals(host, load, 0, "default", "total");
  expect_totals(host, load, 1, "staging", "count");
  EXPECT_EQ(host.plugin_mappings(), 2);
  // Commands still run in both namespaces, each with its version.
  EXPECT_TRUE(host.send("Tally", "after", "Add", R"({"n":2})", "staging").status.is_ok());
  EXPECT_EQ(host.view("Tally", "after", "staging"), R"({"count":2})");
  EXPECT_TRUE(host.send("Tally", "after", "Add", R"({"n":3})").status.is_ok());
  EXPECT_EQ(host.view("Tally", "after"), R"({"total":3})");
}

INSTANTIATE_TEST_SUITE_P(Stores, Canary, testing::Values("memory", "sqlite"),
                         [](const auto& info) { return info.param; });

// A canary rolled back returns to the main version; a reload of the main
// version leaves a namespace with a version of its own alone.
TEST(CanaryScope, RollbackOfACanaryAndMainReloadsLeaveItAlone) {
  TestHost host(options("memory"));
  ASSERT_TRUE(host.load(tp("tally_v1")).is_ok());
  ASSERT_TRUE(host.send("Tally", "a", "Add", R"({"n":4})", "staging").status.is_ok());
  ASSERT_TRUE(host.send("Tally", "a", "Add", R"({"n":5})").status.is_ok());
  auto canary = host.plugins().reload(request({"staging"}, tp("tally_v2_exact")));
  ASSERT_TRUE(canary.is_ok()) << canary.status().to_string();
  EXPECT_EQ(canary->actors_migrated, 1u);

  auto main = host.plugins().reload(request({}, tp("tally_v1_1")));
  ASSERT_TRUE(main.is_ok()) << main.status().to_string();
  EXPECT_EQ(main->actors_migrated, 1u) << "default's actor only";
  EXPECT_EQ(version_of(host, "default"), "1.1.0");
  EXPECT_EQ(version_of(host, "staging"), "2.1.0-exact");
  EXPECT_EQ(host.view("Tally", "a", "staging"), R"({"total":4})");

  ReloadRequest back = request({"staging"});
  back.to_previous = true;
  auto rolled = host.plugins().reload(back);
  ASSERT_TRUE(rolled.is_ok()) << rolled.status().to_string();
  EXPECT_EQ(rolled->to_version, "1.1.0") << "a canary returns to the main version";
  EXPECT_TRUE(host.registry().namespace_versions("tally").empty());
  EXPECT_EQ(host.view("Tally", "a", "staging"), R"({"count":4})");
  EXPECT_EQ(host.plugin_mappings(), 1);
}

TEST(CanaryScope, RequestsNamingWhatIsNotThereAreRefused) {
  TestHost host(options("memory"));
  ASSERT_TRUE(host.load(tp("tally_v1")).is_ok());
  auto unknown = host.plugins().reload(request({"prod"}, tp("tally_v2_exact")));
  ASSERT_FALSE(unknown.is_ok());
  EXPECT_NE(unknown.status().message().find("namespace prod is not served"), std::string::npos)
      << unknown.status().to_string();
  ReloadRequest promote;
  promote.plugin = "tally";
  promote.promote_from = "staging";
  auto nothing = host.plugins().reload(promote);
  ASSERT_FALSE(nothing.is_ok());
  EXPECT_NE(nothing.status().message().find("nothing to promote"), std::string::npos);
  ASSERT_TRUE(host.plugins().reload(request({"staging"}, tp("tally_v2_exact"))).is_ok());
  ReloadRequest mixed = request({"staging", "default"});
  mixed.to_previous = true;
  auto refused = host.plugins().reload(mixed);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_NE(refused.status().message().find("run different versions"), std::string::npos);
  EXPECT_EQ(version_of(host, "staging"), "2.1.0-exact");
  EXPECT_EQ(version_of(host, "default"), "1.0.0");
}

}  // namespace
}  // namespace aether
