// Kill -9 a process running the runtime on sqlite (FULL) during load; after
// reopening, every command whose reply was received is there, and nothing is
// half-written.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <sstream>
#include <string>

#include "store/store.hpp"
#include "support/temp_dir.hpp"

namespace aether {
namespace {

TEST(Durability, SigkillDuringLoadLosesNoAcknowledgedCommand) {
  test::TempDir dir;
  const std::string db = dir.file("aether.db");
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(pipefd[1], STDOUT_FILENO);
    close(pipefd[0]);
    close(pipefd[1]);
    const std::string child = std::string(AETHER_BINARY_DIR) + "/tests/durability_child";
    const std::string plugin = std::string(AETHER_PLUGIN_DIR) + "/counter.so";
    execl(child.c_str(), child.c_str(), db.c_str(), plugin.c_str(), nullptr);
    _exit(127);
  }
  close(pipefd[1]);
  FILE* in = fdopen(pipefd[0], "r");
  std::map<std::string, uint64_t> acked;  // highest acknowledged version per actor
  size_t lines = 0;
  char buf[128];
  auto read_ack = [&] {
    if (std::fgets(buf, sizeof buf, in) == nullptr) return false;
    std::istringstream ss(buf);
    std::string id;
    uint64_t v = 0;
    if (ss >> id >> v) {
      acked[id] = std::max(acked[id], v);
      ++lines;
    }
    return true;
  };
  // Read acknowledgements until enough arrived, then kill in the middle of
  // the load. Bounded: the child must produce them or the test fails.
  while (lines < 3000 && read_ack()) {
  }
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  // Replies already in the pipe were received before the kill, too.
  while (read_ack()) {
  }
  std::fclose(in);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child ended early: " << status;
  ASSERT_GE(lines, 3000u) << "the child did not produce enough acknowledged commands";

  // The file is a consistent database.
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw, "PRAGMA integrity_check", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "ok");
  sqlite3_finalize(st);
  sqlite3_close(raw);

  SqliteOptions o;
  o.path = db;
  auto store = open_sqlite_store(o);
  ASSERT_TRUE(store.is_ok()) << store.status().to_string();
  for (const auto& [id, version] : acked) {
    auto ev = (*store)->read_all({"default", "Counter", id});
    ASSERT_TRUE(ev.is_ok()) << id << ": " << ev.status().to_string();
    ASSERT_GE(ev->size(), version) << id << ": acknowledged version " << version << " is missing";
    for (size_t i = 0; i < ev->size(); ++i) {
      ASSERT_EQ((*ev)[i].version, i + 1) << id;
      ASSERT_EQ((*ev)[i].type, "Incremented") << id;
      ASSERT_EQ((*ev)[i].payload, R"({"by":1})") << id << ": half-written payload";
    }
  }
}

}  // namespace
}  // namespace aether
