// Test support: children started by a test die with it, also when the test
// crashes before its destructors run.
#pragma once

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "support/wait.hpp"

namespace aether::test {

// Stops a process (SIGSTOP) and resumes it (SIGCONT) when the scope ends,
// whatever the test did, or earlier with resume().
struct Paused {
  pid_t pid;
  // Returns once every thread of the process has stopped (SIGSTOP takes
  // effect asynchronously: a thread running on another core may still
  // answer a request sent right after kill()), waiting at most 30 s (a
  // loaded machine may take a while to schedule each thread's stop).
  explicit Paused(pid_t p) : pid(p) {
    kill(pid, SIGSTOP);
    eventually([this] { return all_stopped(); }, kWaitSeconds, 1);
  }
  ~Paused() { resume(); }
  Paused(const Paused&) = delete;
  Paused& operator=(const Paused&) = delete;
  void resume() {
    if (pid > 0) kill(pid, SIGCONT);
    pid = -1;
  }

 private:
  // Every task in /proc/<pid>/task is in state T (stopped).
  bool all_stopped() const {
    std::error_code ec;
    const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
    for (const auto& t : std::filesystem::directory_iterator(tasks, ec)) {
      std::ifstream f(t.path() / "stat");
      std::string line;
      std::getline(f, line);
      const size_t paren = line.rfind(')');
      if (paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] != 'T') return false;
    }
    return !ec;
  }
};

// Call in the child between fork() and exec(); `parent` is getpid() of the
// parent taken before fork().
inline void die_with_parent(pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(1);  // the parent is already gone
}

// Waits up to `timeout_ms` for child `pid` to exit; past that it is killed
// (SIGKILL) and reaped. Returns its wait status; `*killed` says whether it
// had to be killed.
inline int reap_child(pid_t pid, int64_t timeout_ms, bool* killed = nullptr) {
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  bool was_killed = false;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      was_killed = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (killed != nullptr) *killed = was_killed;
  return status;
}

}  // namespace aether::test
