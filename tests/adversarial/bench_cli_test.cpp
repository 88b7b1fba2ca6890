// `aether bench` against a real aether-host: short runs over HTTP (the
// embedded default, sqlite) and over NATS request/reply (a real nats-server);
// the counts add up (sent = ok + errors, errors = the sum of errors by code),
// the JSON report has its fields, rejected commands are counted by their
// error code, and bad options are refused.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "support/host_process.hpp"
#include "support/nats_server.hpp"
#include "support/temp_dir.hpp"

namespace aether {
namespace {

using json = nlohmann::json;
using test::HostProcess;
using test::run_process;

// Runs `aether [global...] bench [args...] --json --no-progress` and parses
// its report.
json run_bench_json(const std::vector<std::string>& global, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {test::cli_binary()};
  argv.insert(argv.end(), global.begin(), global.end());
  argv.push_back("bench");
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--json", "--no-progress"});
  const auto r = run_process(argv, {}, 60);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  const json j = json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << "not JSON: " << r.out << r.err;
  return j.is_discarded() ? json::object() : j;
}

// The report's shape, and that its counts add up.
void expect_consistent_report(const json& j) {
  for (const char* key : {"transport", "target", "actors", "clients", "seconds", "sent", "ok", "errors",
                          "errors_by_code", "commands_per_second", "latency_ms"}) {
    ASSERT_TRUE(j.contains(key)) << key << " missing in " << j.dump();
  }
  for (const char* p : {"p50", "p90", "p99", "max"}) {
    ASSERT_TRUE(j["latency_ms"].contains(p)) << p << " missing in " << j.dump();
    EXPECT_GE(j["latency_ms"][p].get<double>(), 0.0);
  }
  EXPECT_LE(j["latency_ms"]["p50"].get<double>(), j["latency_ms"]["p99"].get<double>());
  EXPECT_LE(j["latency_ms"]["p99"].get<double>(), j["latency_ms"]["max"].get<double>());
  const uint64_t sent = j["sent"], ok = j["ok"], errors = j["errors"];
  EXPECT_GT(sent, 0u);
  EXPECT_EQ(sent, ok + errors) << j.dump();
  uint64_t by_code = 0;
  for (const auto& [code, n] : j["errors_by_code"].items()) by_code += n.get<uint64_t>();
  EXPECT_EQ(by_code, errors) << j.dump();
}

// Sums the versions of Counter actors prefix0..prefix<n-1>.
uint64_t counter_versions(const std::string& url, const std::string& prefix, int n) {
  uint64_t versions = 0;
  for (int i = 0; i < n; ++i) {
    const auto r = run_process({test::cli_binary(), "--url", url, "--json", "state", "Counter",
                                prefix + std::to_string(i)});
    const json s = json::parse(r.out, nullptr, false);
    if (!s.is_discarded() && s.contains("version")) versions += s["version"].get<uint64_t>();
  }
  return versions;
}

class BenchCliTest : public testing::Test {
 protected:
  void SetUp() override {
    host_ = std::make_unique<HostProcess>(std::vector<std::string>{"--config", test::default_config()},
                                          test::default_host_env(dir_.file("data")), dir_.file("host.log"));
    ASSERT_TRUE(host_->start()) << host_->log();
  }
  test::TempDir dir_;
  std::unique_ptr<HostProcess> host_;
};

TEST_F(BenchCliTest, HttpRunCountsAddUpAndStateMatches) {
  const json j = run_bench_json({"--url", host_->url()},
                                {"--duration", "1s", "--clients", "4", "--actors", "10", "--id-prefix", "b-"});
  expect_consistent_report(j);
  EXPECT_EQ(j["transport"], "http");
  EXPECT_EQ(j["errors"], 0u) << j.dump();
  EXPECT_GT(j["ok"].get<uint64_t>(), 0u);
  // Every ok command was one Increment: the actors' versions add up to it.
  EXPECT_EQ(counter_versions(host_->url(), "b-", 10), j["ok"].get<uint64_t>());
}

// Hundreds of clients share a few event-loop threads: each reply is matched
// to its own request, every command counted once.
TEST_F(BenchCliTest, HundredsOfClientsOnFewThreadsCountEveryCommandOnce) {
  const json j = run_bench_json({"--url", host_->url()},
                                {"--duration", "1s", "--clients", "300", "--actors", "20", "--id-prefix", "m-"});
  expect_consistent_report(j);
  EXPECT_EQ(j["clients"], 300u);
  EXPECT_EQ(j["errors"], 0u) << j.dump();
  EXPECT_GT(j["ok"].get<uint64_t>(), 0u);
  EXPECT_EQ(counter_versions(host_->url(), "m-", 20), j["ok"].get<uint64_t>());
}

TEST_F(BenchCliTest, RejectedCommandsAreCountedByCode) {
  const json j = run_bench_json({"--url", host_->url()},
                                {"--duration", "500ms", "--clients", "2", "--command", "NoSuchCommand"});
  expect_consistent_report(j);
  EXPECT_EQ(j["ok"], 0u);
  ASSERT_EQ(j["errors_by_code"].size(), 1u) << j.dump();
  EXPECT_EQ(j["errors_by_code"].begin().value(), j["errors"]);
}

TEST_F(BenchCliTest, ReadableReportAndProgress) {
  const auto r = run_process({test::cli_binary(), "--url", host_->url(), "bench", "--duration", "1500ms",
                              "--clients", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  for (const char* want : {"throughput", "p50", "p99", "max", "sent"}) {
    EXPECT_NE(r.out.find(want), std::string::npos) << want << " in:\n" << r.out;
  }
  EXPECT_NE(r.err.find("ok "), std::string::npos) << "a progress line on stderr:\n" << r.err;
}

TEST_F(BenchCliTest, BadOptionsAreRefused) {
  for (const std::vector<std::string>& bad : {std::vector<std::string>{"--duration", "soon"},
                                              {"--payload", "[1]"}, {"--clients", "0"}}) {
    std::vector<std::string> argv = {test::cli_binary(), "--url", host_->url(), "bench"};
    argv.insert(argv.end(), bad.begin(), bad.end());
    const auto r = run_process(argv);
    EXPECT_EQ(r.exit_code, 64) << bad[0] << ": " << r.out << r.err;
  }
  const auto r = run_process({test::cli_binary(), "--url", "http://127.0.0.1:1", "bench", "--duration", "200ms",
                              "--clients", "1", "--no-progress"});
  EXPECT_EQ(r.exit_code, 2) << "nothing listens there: " << r.out << r.err;
  EXPECT_NE(r.out.find("connect_failed"), std::string::npos) << r.out;
}

TEST(BenchCliNats, NatsRequestReplyCountsAddUp) {
  test::NatsServer server;
  ASSERT_TRUE(server.running()) << server.log();
  test::TempDir dir;
  const std::string config = dir.file("nats.yaml");
  std::ofstream(config) << "node:\n  data_dir: " << dir.file("data") << "\nstore:\n  backend: memory\n"
                        << "nats:\n  enabled: true\n  servers: [\"" << server.url() << "\"]\n  ingress: true\n"
                        << "plugins:\n  dir: " << AETHER_PLUGIN_DIR << "\n  list: [counter]\n"
                        << "api:\n  http:\n    listen: 127.0.0.1:0\n";
  HostProcess host({"--config", config}, {}, dir.file("host.log"));
  ASSERT_TRUE(host.start()) << host.log();
  const json j = run_bench_json({}, {"--nats", server.url(), "--duration", "1s", "--clients", "4", "--actors", "8"});
  expect_consistent_report(j);
  EXPECT_EQ(j["transport"], "nats");
  EXPECT_GT(j["ok"].get<uint64_t>(), 0u) << j.dump() << host.log();
}

}  // namespace
}  // namespace aether
