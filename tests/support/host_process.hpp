// Test support: the real aether-host binary as a child process, and the
// aether CLI run to completion.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/child_process.hpp"

namespace aether::test {

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct ProcessResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `argv` with extra environment variables, waits (bounded), and
// returns its exit code and output.
inline ProcessResult run_process(const std::vector<std::string>& argv,
                                 const std::map<std::string, std::string>& env = {},
                                 int timeout_seconds = 60) {
  char out_tmpl[] = "/tmp/aether-out-XXXXXX";
  char err_tmpl[] = "/tmp/aether-err-XXXXXX";
  const int out_fd = mkstemp(out_tmpl);
  const int err_fd = mkstemp(err_tmpl);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    die_with_parent(parent);
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(out_fd);
  close(err_fd);
  ProcessResult r;
  bool killed = false;
  const int status = reap_child(pid, int64_t{timeout_seconds} * 1000, &killed);
  if (killed) r.err = "timed out";
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  r.out = read_file(out_tmpl);
  r.err += read_file(err_tmpl);
  unlink(out_tmpl);
  unlink(err_tmpl);
  return r;
}

// The environment of a host on config/aether.yaml (the embedded default)
// with its data in `data`, on any free loopback port.
inline std::map<std::string, std::string> default_host_env(const std::string& data) {
  return {{"AETHER_DATA", data}, {"AETHER_LISTEN", "127.0.0.1:0"}, {"AETHER_PLUGIN_DIR", AETHER_PLUGIN_DIR}};
}
inline std::string default_config() { return std::string(AETHER_SOURCE_DIR) + "/config/aether.yaml"; }

inline std::string host_binary() { return std::string(AETHER_BINARY_DIR) + "/host/aether-host"; }
inline std::string cli_binary() { return std::string(AETHER_BINARY_DIR) + "/host/aether"; }

// A running aether-host. The log goes to a file; start() waits for the
// "listening on http://HOST:PORT" line.
class HostProcess {
 public:
  HostProcess(std::vector<std::string> args, std::map<std::string, std::string> env,
              std::string log_path)
      : args_(std::move(args)), env_(std::move(env)), log_path_(std::move(log_path)) {}
  ~HostProcess() { kill_now(); }

  // Returns false (with log() explaining) if the host did not come up within
  // the bound, or exited.
  bool start(int timeout_seconds = 30) {
    launch();
    return wait_listening(timeout_seconds);
  }

  // Starts the process without waiting for it. The child dies with the
  // calling thread (PR_SET_PDEATHSIG): call from the test's main thread.
  void launch() {
    const int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ == 0) {
      die_with_parent(parent);
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      for (const auto& [k, v] : env_) setenv(k.c_str(), v.c_str(), 1);
      std::vector<std::string> all = {host_binary()};
      all.insert(all.end(), args_.begin(), args_.end());
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(fd);
  }

  // Waits (bounded) for the "listening on" line of a launched host; false if
  // it exited first or the bound passed.
  bool wait_listening(int timeout_seconds = 30) {
    const std::regex listening(R"(listening on http://([0-9.]+):([0-9]+))");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
    while (pid_ > 0 && std::chrono::steady_clock::now() < deadline) {
      std::smatch m;
      const std::string log = read_file(log_path_);
      if (std::regex_search(log, m, listening)) {
        port_ = std::stoi(m[2]);
        return true;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  // SIGTERM and wait (bounded); returns the exit code.
  int stop(int timeout_seconds = 30) {
    if (pid_ <= 0) return exit_code_;
    kill(pid_, SIGTERM);
    const int status = reap_child(pid_, int64_t{timeout_seconds} * 1000);
    pid_ = -1;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return exit_code_;
  }

  void kill_now() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

  // Sends a signal (SIGSTOP/SIGCONT to stall and resume it).
  void signal(int sig) const {
    if (pid_ > 0) kill(pid_, sig);
  }

  // "running", "exited with code N" or "killed by signal N"; reaps a host
  // that ended.
  std::string state() {
    if (pid_ > 0) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) != pid_) return "running";
      pid_ = -1;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      end_ = WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                                 : "exited with code " + std::to_string(exit_code_);
    }
    return end_.empty() ? "not running" : end_;
  }

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string log() const { return read_file(log_path_); }
  int exit_code() const { return exit_code_; }

 private:
  std::vector<std::string> args_;
  std::map<std::string, std::string> env_;
  std::string log_path_;
  pid_t pid_ = -1;
  int port_ = 0;
  int exit_code_ = -1;
  std::string end_;  // how it ended, once state() reaped it
};

}  // namespace aether::test
