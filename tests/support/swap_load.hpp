// Test support: commands from several threads to a testkit host while a hot
// swap (or anything else) happens, with the totals each actor must end at.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "testkit/test_host.hpp"

namespace aether::test {

// Threads x actors Tally actors per namespace ("t<thread>-<actor>"), each
// sent up to `rounds` Add commands (n = 1..7; fewer after stop()). A command
// that fails is a test failure and is counted.
class SwapLoad {
 public:
  SwapLoad(testkit::TestHost& host, std::vector<std::string> namespaces, int threads = 8, int actors = 25,
           int rounds = 60)
      : host_(host), namespaces_(std::move(namespaces)), threads_(threads), actors_(actors), rounds_(rounds),
        expected_(namespaces_.size() * threads * actors, 0) {}
  ~SwapLoad() { join(); }

  void start() {
    for (int t = 0; t < threads_; ++t) workers_.emplace_back([this, t] { run(t); });
  }
  // Waits (bounded by the load itself) until `ok` commands have succeeded.
  void wait_for_commands(uint64_t ok) {
    while (host_.runtime().stats().commands_ok < ok && finished_.load() < threads_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  // The threads end after their current round.
  void stop() { stopping_.store(true); }
  // Waits for `before` commands to succeed, runs `swap` (which returns once
  // the swap is done), waits for `more` commands to succeed after it, then
  // stops and joins the load. Expects the swap to have happened under load:
  // no thread had finished when it returned, and commands went on arriving.
  template <class F>
  void around(uint64_t before, F&& swap, uint64_t more) {
    wait_for_commands(before);
    swap();
    const uint64_t ok_at_swap = host_.runtime().stats().commands_ok;
    const int finished_at_swap = finished_.load();
    wait_for_commands(ok_at_swap + more);
    const uint64_t ok_after_swap = host_.runtime().stats().commands_ok;
    stop();
    join();
    EXPECT_EQ(finished_at_swap, 0) << "the swap must happen under load";
    EXPECT_GE(ok_after_swap, ok_at_swap + more) << "commands must still be arriving after the swap";
  }
  void join() {
    for (auto& w : workers_) {
      if (w.joinable()) w.join();
    }
  }
  int failures() const { return failures_.load(); }
  int finished_threads() const { return finished_.load(); }
  uint64_t total_commands() const {
    return static_cast<uint64_t>(threads_) * actors_ * rounds_ * namespaces_.size();
  }
  static std::string id(int t, int a) { return "t" + std::to_string(t) + "-" + std::to_string(a); }
  // The total actor (namespace index, thread, actor) must have.
  int64_t expected(size_t ns, int t, int a) const { return expected_[slot(ns, t, a)]; }
  int threads() const { return threads_; }
  int actors() const { return actors_; }

 private:
  size_t slot(size_t ns, int t, int a) const { return (ns * threads_ + t) * actors_ + a; }
  void run(int t) {
    for (int r = 0; r < rounds_ && !stopping_.load(); ++r) {
      for (int a = 0; a < actors_; ++a) {
        for (size_t ns = 0; ns < namespaces_.size(); ++ns) {
          const int n = 1 + (r + a) % 7;
          auto res = host_.send("Tally", id(t, a), "Add", R"({"n":)" + std::to_string(n) + "}", namespaces_[ns]);
          if (res.status.is_ok()) {
            expected_[slot(ns, t, a)] += n;
          } else {
            failures_.fetch_add(1);
            ADD_FAILURE() << namespaces_[ns] << "/" << id(t, a) << ": " << res.status.to_string();
          }
        }
      }
    }
    finished_.fetch_add(1);
  }

  testkit::TestHost& host_;
  std::vector<std::string> namespaces_;
  int threads_, actors_, rounds_;
  std::vector<int64_t> expected_;  // each slot written by one thread only
  std::atomic<int> failures_{0}, finished_{0};
  std::atomic<bool> stopping_{false};
  std::vector<std::thread> workers_;
};

}  // namespace aether::test
