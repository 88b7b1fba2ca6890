// examples/cluster/run.sh as a user runs it: three NATS servers and three
// hosts come up, form a cluster, take a command, and stop on SIGTERM.
#include <gtest/gtest.h>

#include "support/host_process.hpp"
#include "support/nats_server.hpp"
#include "support/temp_dir.hpp"

namespace aether {
namespace {

// The first of three consecutive loopback ports that are free now.
int three_free_ports() {
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int base = test::free_port();
    if (base + 2 < 65536 && !test::port_open(base + 1) && !test::port_open(base + 2)) return base;
  }
  return 0;
}

TEST(ClusterExample, RunShStartsAClusterThatServesCommands) {
  test::TempDir dir;
  const int nats = three_free_ports(), routes = three_free_ports(), http = three_free_ports();
  ASSERT_TRUE(nats && routes && http);
  const std::string out = dir.file("run.out");
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    setenv("NATS_PORT", std::to_string(nats).c_str(), 1);
    setenv("ROUTE_PORT", std::to_string(routes).c_str(), 1);
    setenv("HTTP_PORT", std::to_string(http).c_str(), 1);
    setenv("CLUSTER_DATA", dir.file("data").c_str(), 1);
    const std::string script = std::string(AETHER_SOURCE_DIR) + "/examples/cluster/run.sh";
    execl("/bin/bash", "bash", script.c_str(), nullptr);
    _exit(127);
  }
  const std::string url = "http://127.0.0.1:" + std::to_string(http);
  test::ProcessResult c;
  bool formed = false;
  for (int i = 0; i < 600 && !formed; ++i) {  // up to 60 s
    c = test::run_process({test::cli_binary(), "--url", url, "cluster"});
    formed = c.exit_code == 0 && c.out.find("(0 unowned)") != std::string::npos &&
             c.out.find("node-3") != std::string::npos && c.out.find("migrations in flight: 0") != std::string::npos;
    if (!formed) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(formed) << c.out << c.err << test::read_file(out);
  if (formed) {
    const std::string second = "http://127.0.0.1:" + std::to_string(http + 1);
    auto s = test::run_process({test::cli_binary(), "--url", second, "send", "Counter", "c-1", "Increment", R"({"by":2})"});
    EXPECT_EQ(s.exit_code, 0) << s.out << s.err;
    EXPECT_NE(s.out.find("ok: Counter/c-1 now at version 1"), std::string::npos) << s.out;
    auto st = test::run_process({test::cli_binary(), "--url", "http://127.0.0.1:" + std::to_string(http + 2), "state",
                                 "Counter", "c-1"});
    EXPECT_NE(st.out.find("\"value\": 2"), std::string::npos) << st.out << st.err;
  }
  kill(pid, SIGTERM);
  bool killed = false;
  test::reap_child(pid, 60000, &killed);
  EXPECT_FALSE(killed) << "run.sh did not stop on SIGTERM within 60 s";
  for (int p : {http, http + 1, http + 2, nats, nats + 1, nats + 2}) {
    EXPECT_FALSE(test::port_open(p)) << "port " << p << " still open after run.sh stopped";
  }
}

}  // namespace
}  // namespace aether
