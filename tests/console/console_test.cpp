// The web console in a real headless Chromium (Debian's chromium, driven by
// puppeteer-core: tests/console/console_test.cjs) against real hosts: a
// single node, a node with a token, and a 3-node cluster that loses a node.
// Screenshots of each view go to <build>/console-artifacts/.
// Skips, saying why, only when chromium or node is not installed
// (scripts/deps.sh installs both); tests/console/setup.sh installs
// puppeteer-core into a cache directory outside the source tree.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "support/cluster_harness.hpp"
#include "support/host_process.hpp"
#include "support/temp_dir.hpp"

namespace aether {
namespace {

namespace fs = std::filesystem;

std::string chromium() {
  for (const char* p : {"/usr/lib/chromium/chromium", "/usr/bin/chromium"}) {
    if (fs::exists(p)) return p;
  }
  return "";
}

std::string node() { return fs::exists("/usr/bin/node") ? "/usr/bin/node" : ""; }

std::string artifacts(const std::string& scenario) {
  const std::string dir = std::string(AETHER_BINARY_DIR) + "/console-artifacts/" + scenario;
  fs::create_directories(dir);
  return dir;
}

// Installs puppeteer-core (once) and returns the directory holding node_modules.
std::string puppeteer_dir(std::string& why) {
  auto r = test::run_process({"/bin/bash", std::string(AETHER_SOURCE_DIR) + "/tests/console/setup.sh"}, {}, 600);
  if (r.exit_code != 0) {
    why = "tests/console/setup.sh failed: " + r.err;
    return "";
  }
  std::string dir = r.out;
  while (!dir.empty() && (dir.back() == '\n' || dir.back() == '\r')) dir.pop_back();
  return dir.substr(dir.rfind('\n') == std::string::npos ? 0 : dir.rfind('\n') + 1);
}

#define REQUIRE_BROWSER()                                                                              \
  if (chromium().empty() || node().empty()) {                                                          \
    GTEST_SKIP() << "the console's browser tests need Debian's chromium and nodejs (scripts/deps.sh)"; \
  }

// Runs one scenario of console_test.cjs; its output goes to the test log.
void run_scenario(const std::string& scenario, const std::string& args_json) {
  std::string why;
  const std::string modules = puppeteer_dir(why);
  ASSERT_FALSE(modules.empty()) << why;
  const std::string script = std::string(AETHER_SOURCE_DIR) + "/tests/console/console_test.cjs";
  auto r = test::run_process({node(), script, modules, scenario, artifacts(scenario), args_json}, {}, 400);
  std::cout << r.out << r.err;
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

std::string single_host_config(test::TempDir& dir, const std::string& http) {
  const std::string path = dir.file("host.yaml");
  std::ofstream out(path);
  out << "store:\n  backend: memory\nplugins:\n  dir: " << AETHER_PLUGIN_DIR
      << "\n  list: [bank, counter]\napi:\n  http:\n    listen: 127.0.0.1:0\n" << http;
  return path;
}

TEST(Console, SingleNodeViewsInChromium) {
  REQUIRE_BROWSER();
  test::TempDir dir;
  test::HostProcess host({"--config", single_host_config(dir, "")}, {}, dir.file("host.log"));
  ASSERT_TRUE(host.start()) << host.log();
  run_scenario("single", R"({"url":")" + host.url() + R"("})");
}

TEST(Console, TokenAskedOnceAndRequiredByEveryApiCall) {
  REQUIRE_BROWSER();
  test::TempDir dir;
  test::HostProcess host({"--config", single_host_config(dir, "    bearer_token: console-s3cret\n")}, {},
                         dir.file("host.log"));
  ASSERT_TRUE(host.start()) << host.log();
  run_scenario("token", R"({"url":")" + host.url() + R"(","token":"console-s3cret"})");
}

TEST(Console, ClusterViewFollowsANodeLeaving) {
  REQUIRE_BROWSER();
  test::ClusterHarness cluster;
  ASSERT_TRUE(cluster.nats_ready()) << "the NATS cluster did not become ready";
  for (int i = 1; i <= 3; ++i) {
    std::string why;
    ASSERT_NE(cluster.start_host("node-" + std::to_string(i), &why), nullptr) << why;
  }
  ASSERT_TRUE(cluster.wait_converged(3, 60)) << cluster.last_status().dump(1);
  test::TempDir dir;
  const std::string leave = dir.file("leave-now");
  std::thread browser([&] {
    run_scenario("cluster", R"({"url":")" + cluster.host("node-1").url() + R"(","other_url":")" +
                                cluster.host("node-2").url() + R"(","leave_file":")" + leave + R"("})");
  });
  // The script asks for the leave once it has checked the grid of three.
  bool asked = false;
  for (int i = 0; i < 1200 && !asked; ++i) {
    asked = fs::exists(leave);
    if (!asked) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (asked) {
    EXPECT_EQ(cluster.stop_host("node-3", false), 0);
  }
  browser.join();
  EXPECT_TRUE(asked) << "the browser script never got to the leave";
}

}  // namespace
}  // namespace aether
