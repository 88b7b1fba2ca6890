// Hostile configuration files against the real aether-host binary: numbers
// that would wrap, keys given twice, extra YAML documents, and paths that are
// not regular files. Each is refused by --check-config and by --config with
// an error naming the file (and the line), and the host starts nothing.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "support/host_process.hpp"
#include "support/temp_dir.hpp"

namespace aether {
namespace {

using test::run_process;

const std::string kPlugins = "plugins:\n  dir: " + std::string(AETHER_PLUGIN_DIR) + "\n  list: [bank]\n";

std::map<std::string, std::string> env_for(const test::TempDir& dir) {
  return {{"AETHER_LISTEN", "127.0.0.1:0"}, {"AETHER_DATA", dir.file("data")}};
}

// Both --check-config and --config refuse `path` with `message` in the error.
void expect_refused(const test::TempDir& dir, const std::string& path, const std::string& message) {
  auto check = run_process({test::host_binary(), "--check-config", path}, env_for(dir), 20);
  EXPECT_EQ(check.exit_code, 1) << check.out << check.err;
  EXPECT_NE(check.err.find(message), std::string::npos) << "wanted '" << message << "' in: " << check.err;
  EXPECT_EQ(check.out.find(": ok"), std::string::npos) << check.out;
  auto run = run_process({test::host_binary(), "--config", path}, env_for(dir), 20);
  EXPECT_EQ(run.exit_code, 1) << run.out << run.err;
  EXPECT_NE(run.err.find(message), std::string::npos) << "wanted '" << message << "' in: " << run.err;
  EXPECT_EQ(run.err.find("listening"), std::string::npos) << "it must start nothing";
}

struct Case {
  const char* name;
  std::string yaml;
  std::string message;  // after "<file>:"
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class BadConfigText : public testing::TestWithParam<Case> {};

TEST_P(BadConfigText, IsRefusedWithFileAndLine) {
  test::TempDir dir;
  const std::string file = dir.file("bad.yaml");
  std::ofstream(file) << GetParam().yaml;
  expect_refused(dir, file, file + ":" + GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadConfigText,
    testing::Values(
        Case{"DurationOverflow", kPlugins + "actors:\n  idle_timeout: 9999999999999999h\n",
             "5: actors.idle_timeout: duration '9999999999999999h' is too long (at most 876000h"},
        Case{"DurationPastTheLimit", kPlugins + "cluster:\n  leave_timeout: 876001h\n",
             "5: cluster.leave_timeout: duration '876001h' is too long"},
        Case{"DurationBeyond64Bits", kPlugins + "nats:\n  request_timeout: 99999999999999999999999ms\n",
             "5: nats.request_timeout: duration '99999999999999999999999ms' is too long"},
        Case{"NoPingsOut", kPlugins + "nats:\n  max_pings_out: 0\n",
             "5: nats.max_pings_out: must be between 1 and 1000, got 0"},
        Case{"NegativeDuration", kPlugins + "actors:\n  idle_timeout: -5s\n",
             "5: actors.idle_timeout: expected a duration like 250ms, 30s, 5m or 1h, got '-5s'"},
        Case{"Uint32Overflow", kPlugins + "actors:\n  max_active: 4294967296\n",
             "5: actors.max_active: must be between 1 and 4294967295, got 4294967296"},
        Case{"IntegerBeyond64Bits", kPlugins + "actors:\n  max_active: 99999999999999999999999\n",
             "5: actors.max_active: must be between 1 and 4294967295, got 99999999999999999999999"},
        Case{"SignedInteger", kPlugins + "actors:\n  max_active: +5\n",
             "5: actors.max_active: expected an unsigned integer, got '+5'"},
        Case{"DuplicateKey", kPlugins + "node:\n  id: a\n  id: b\n",
             "6: node.id: duplicate key (first given at line 5)"},
        Case{"DuplicateSection", "node:\n  id: a\n" + kPlugins + "node:\n  id: b\n",
             "6: node: duplicate key (first given at line 1)"},
        Case{"DuplicateInFlowMapping", kPlugins + "actors: {workers: 1, workers: 2}\n",
             "4: actors.workers: duplicate key (first given at line 4)"},
        Case{"DuplicateActorType", kPlugins + "actors:\n  types:\n    Counter: {mailbox_size: 1}\n    Counter: {}\n",
             "7: actors.types.Counter: duplicate key (first given at line 6)"},
        Case{"SecondDocument", kPlugins + "---\nnode:\n  id: other\n",
             "5: a second YAML document (after '---'); a configuration is one document"},
        Case{"TooDeep", kPlugins + "node: " + std::string(40, '[') + std::string(40, ']') + "\n",
             "4: node[0][0][0]"}),
    [](const testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

TEST(ConfigFile, ADirectoryIsNotAConfiguration) {
  test::TempDir dir;
  std::filesystem::create_directories(dir.file("conf"));
  expect_refused(dir, dir.file("conf"), dir.file("conf") + ": a directory, not a configuration file");
}

TEST(ConfigFile, ADeviceIsRefusedWithoutReadingIt) {
  test::TempDir dir;
  expect_refused(dir, "/dev/zero", "/dev/zero: a character device, not a configuration file");
}

TEST(ConfigFile, AFifoIsRefusedWithoutWaitingForAWriter) {
  test::TempDir dir;
  ASSERT_EQ(mkfifo(dir.file("fifo").c_str(), 0600), 0);
  expect_refused(dir, dir.file("fifo"), dir.file("fifo") + ": a FIFO, not a configuration file");
}

TEST(ConfigFile, AFileOverOneMebibyteIsRefused) {
  test::TempDir dir;
  const std::string file = dir.file("big.yaml");
  std::ofstream(file) << kPlugins << std::string(2 << 20, '#') << "\n";
  expect_refused(dir, file, file + ": larger than 1048576 bytes (1 MiB)");
}

TEST(ConfigFile, LimitsThemselvesAreAccepted) {
  test::TempDir dir;
  const std::string file = dir.file("edge.yaml");
  std::ofstream(file) << "---\n" << kPlugins
                      << "actors:\n  idle_timeout: 876000h\n  max_active: 4294967295\n"
                      << "  types:\n    Counter: {idle_timeout: 0}\n"
                      << std::string(1000, '#') << "\n";
  auto r = run_process({test::host_binary(), "--check-config", file}, env_for(dir), 20);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, file + ": ok\n");
}

}  // namespace
}  // namespace aether
