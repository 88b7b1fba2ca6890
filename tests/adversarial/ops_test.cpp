// Process-level hardening against the real aether-host binary: one host per
// data directory (a second one fails at start, naming the holder's pid; the
// lock goes with the holder, also on kill -9), and /readyz follows NATS.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <filesystem>
#include <fstream>

#include "support/host_process.hpp"
#include "support/nats_server.hpp"
#include "support/temp_dir.hpp"

namespace aether {
namespace {

using test::HostProcess;
using test::run_process;

const std::string kDefaultConfig = std::string(AETHER_SOURCE_DIR) + "/config/aether.yaml";

std::map<std::string, std::string> host_env(const std::string& data) {
  return {{"AETHER_DATA", data}, {"AETHER_LISTEN", "127.0.0.1:0"}, {"AETHER_PLUGIN_DIR", AETHER_PLUGIN_DIR}};
}

// A second host on `data` (any free port) exits 1 at once, naming the
// directory and `holder`'s pid.
void expect_second_host_refused(const std::vector<std::string>& args, const std::string& data, pid_t holder) {
  auto second = run_process(args, host_env(data), 30);
  EXPECT_EQ(second.exit_code, 1) << second.out << second.err;
  const std::string want = "data directory " + data + " is in use by another aether-host (pid " +
                           std::to_string(holder) + ",";
  EXPECT_NE(second.err.find(want), std::string::npos) << "wanted '" << want << "' in:\n" << second.err;
  EXPECT_EQ(second.err.find("listening"), std::string::npos) << "it must start nothing";
}

TEST(DataDirectory, OneHostPerDataDirectory) {
  test::TempDir dir;
  const std::string data = dir.file("data");
  const std::vector<std::string> args = {test::host_binary(), "--config", kDefaultConfig};
  auto first = std::make_unique<HostProcess>(std::vector<std::string>{"--config", kDefaultConfig}, host_env(data),
                                             dir.file("first.log"));
  ASSERT_TRUE(first->start()) << first->log();
  expect_second_host_refused(args, data, first->pid());
  // The first host was not disturbed: it still serves commands.
  httplib::Client c("127.0.0.1", first->port());
  auto r = c.Post("/v1/default/actors/BankAccount/a-1/commands", R"({"command":"Open","payload":{"owner":"x"}})",
                  "application/json");
  ASSERT_TRUE(r) << "the first host must still answer";
  EXPECT_EQ(r->status, 200) << r->body;
  // Once it has stopped, another host takes the directory.
  EXPECT_EQ(first->stop(), 0) << first->log();
  HostProcess next({"--config", kDefaultConfig}, host_env(data), dir.file("next.log"));
  ASSERT_TRUE(next.start()) << next.log();
  EXPECT_EQ(next.stop(), 0) << next.log();
}

TEST(DataDirectory, AKilledHolderLeavesNoStaleLock) {
  test::TempDir dir;
  const std::string data = dir.file("data");
  HostProcess holder({"--config", kDefaultConfig}, host_env(data), dir.file("holder.log"));
  ASSERT_TRUE(holder.start()) << holder.log();
  holder.kill_now();  // SIGKILL: no cleanup of any kind
  ASSERT_TRUE(std::filesystem::exists(data + "/aether.lock"));
  HostProcess next({"--config", kDefaultConfig}, host_env(data), dir.file("next.log"));
  ASSERT_TRUE(next.start()) << next.log();
  const std::vector<std::string> args = {test::host_binary(), "--config", kDefaultConfig};
  expect_second_host_refused(args, data, next.pid());
  EXPECT_EQ(next.stop(), 0) << next.log();
}

TEST(DataDirectory, NodeDataDirIsLockedWhateverTheStore) {
  test::TempDir dir;
  const std::string data = dir.file("elsewhere");
  const std::string config = dir.file("memory.yaml");
  std::ofstream(config) << "node:\n  data_dir: ${AETHER_DATA}\nstore:\n  backend: memory\nplugins:\n  dir: "
                        << AETHER_PLUGIN_DIR << "\n  list: [bank]\napi:\n  http:\n    listen: ${AETHER_LISTEN}\n";
  HostProcess first({"--config", config}, host_env(data), dir.file("first.log"));
  ASSERT_TRUE(first.start()) << first.log();
  expect_second_host_refused({test::host_binary(), "--config", config}, data, first.pid());
  EXPECT_EQ(first.stop(), 0) << first.log();
}

// --- /readyz and NATS ----------------------------------------------------------

// Polls GET `path` (bounded) until it answers `status`.
bool wait_status(httplib::Client& c, const std::string& path, int status, std::string* body = nullptr) {
  for (int i = 0; i < 400; ++i) {
    auto r = c.Get(path);
    if (r && r->status == status) {
      if (body) *body = r->body;
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

TEST(Readiness, ReadyzFollowsTheNatsConnection) {
  test::NatsServer nats;
  test::TempDir dir;
  const std::string config = dir.file("nats.yaml");
  std::ofstream(config) << "store:\n  backend: sqlite\n  sqlite:\n    path: " << dir.file("data") << "/aether.db\n"
                        << "nats:\n  enabled: true\n  servers: [\"" << nats.url() << "\"]\n"
                        << "  reconnect:\n    max_attempts: forever\n    wait: 100ms\n"
                        << "plugins:\n  dir: " << AETHER_PLUGIN_DIR << "\n  list: [bank]\n"
                        << "api:\n  http:\n    listen: 127.0.0.1:0\n";
  HostProcess host({"--config", config}, {}, dir.file("host.log"));
  ASSERT_TRUE(host.start()) << host.log();
  httplib::Client c("127.0.0.1", host.port());
  c.set_read_timeout(5, 0);
  ASSERT_TRUE(wait_status(c, "/readyz", 200)) << host.log();
  nats.stop();
  std::string body;
  ASSERT_TRUE(wait_status(c, "/readyz", 503, &body)) << "/readyz stays 200 while NATS is down\n" << host.log();
  EXPECT_NE(body.find("\"unavailable\""), std::string::npos) << body;
  auto health = c.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200) << "the process is alive: " << health->body;
  ASSERT_TRUE(nats.start()) << nats.log();
  EXPECT_TRUE(wait_status(c, "/readyz", 200)) << "/readyz stays 503 after NATS is back\n" << host.log();
  EXPECT_EQ(host.stop(), 0) << host.log();
}

}  // namespace
}  // namespace aether
