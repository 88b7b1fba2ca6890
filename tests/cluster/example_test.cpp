// examples/cluster/run.sh as a user runs it: three NATS servers and three
// hosts come up, form a cluster, take a command, and stop on SIGTERM.
#include <gtest/gtest.h>

#include <ctime>
#include <random>

#include "support/host_process.hpp"
#include "support/nats_server.hpp"
#include "support/temp_dir.hpp"

namespace aether {
namespace {

// The first of nine consecutive loopback ports that are free now, below the
// kernel's ephemeral range (32768 and up): other tests running at the same
// time take ports from that range, for listeners and for the local ends of
// their connections, and would race run.sh for them.
int nine_free_ports() {
  std::mt19937 rng(static_cast<unsigned>(getpid()) ^ static_cast<unsigned>(time(nullptr)));
  std::uniform_int_distribution<int> pick(20000, 32700);
  for (int attempt = 0; attempt < 200; ++attempt) {
    const int base = pick(rng);
    bool free = true;
    for (int p = base; p < base + 9 && free; ++p) free = test::port_bindable(p) && !test::port_open(p);
    if (free) return base;
  }
  return 0;
}

std::string logs_of(const std::string& dir) {
  std::string all;
  for (const char* name : {"nats-1", "nats-2", "nats-3", "node-1", "node-2", "node-3"}) {
    std::string text = test::read_file(dir + "/" + name + ".log");
    if (text.size() > 4000) text = "...\n" + text.substr(text.size() - 4000);
    all += "---- " + std::string(name) + ".log\n" + text;
  }
  return all;
}

TEST(ClusterExample, RunShStartsAClusterThatServesCommands) {
  test::TempDir dir;
  const int nats = nine_free_ports(), routes = nats + 3, http = nats + 6;
  ASSERT_NE(nats, 0) << "no nine consecutive free ports below 32768";
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
    setenv("AETHER_BUILD_DIR", AETHER_BINARY_DIR, 1);  // this build's host, sanitized or not
    const std::string script = std::string(AETHER_SOURCE_DIR) + "/examples/cluster/run.sh";
    execl("/bin/bash", "bash", script.c_str(), nullptr);
    _exit(127);
  }
  const std::string url = "http://127.0.0.1:" + std::to_string(http);
  // run.sh prints its last line once every server and host listens.
  bool started = false;
  for (int i = 0; i < 600 && !started; ++i) {  // up to 60 s
    started = test::read_file(out).find("Ctrl-C stops everything.") != std::string::npos;
    if (!started) {
      if (waitpid(pid, nullptr, WNOHANG) == pid) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  ASSERT_TRUE(started) << test::read_file(out) << logs_of(dir.file("data"));
  test::ProcessResult c;
  bool formed = false;
  for (int i = 0; i < 600 && !formed; ++i) {  // up to 60 s
    c = test::run_process({test::cli_binary(), "--url", url, "cluster"});
    formed = c.exit_code == 0 && c.out.find("(0 unowned)") != std::string::npos &&
             c.out.find("node-3") != std::string::npos && c.out.find("migrations in flight: 0") != std::string::npos;
    if (!formed) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(formed) << c.out << c.err << test::read_file(out) << logs_of(dir.file("data"));
  if (formed) {
    const std::string second = "http://127.0.0.1:" + std::to_string(http + 1);
    auto s = test::run_process({test::cli_binary(), "--url", second, "send", "Counter", "c-1", "Increment", R"({"by":2})"});
    EXPECT_EQ(s.exit_code, 0) << s.out << s.err << logs_of(dir.file("data"));
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
