// The watchdog: plugin calls with a time limit.
//
// A plugin call cannot be interrupted. One that passes its limit is given
// up: a handler answers for it and takes over what it held, the pool thread
// that made it is replaced (so the pool keeps its capacity for others), and
// when the call finally returns its result is discarded, what it used is
// released, and its thread leaves the pool.
//
// Whether a call finished in time or was given up is decided once, under a
// lock, by whichever comes first: the call returning or the watchdog seeing
// it past its deadline. A call that returned in time is never given up after.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "core/clock.hpp"
#include "core/worker_pool.hpp"

namespace aether {

// A quarantine list of actor ids: the ids whose plugin call was given up,
// each with the reason. Thread-safe; checking an empty list costs one atomic
// load. Bounded: past `kMaxIds` ids, the whole list's owner (an actor type) is
// quarantined with the latest reason.
class Quarantine {
 public:
  static constexpr size_t kMaxIds = 10000;

  // Why `id` is quarantined, or empty.
  std::string reason(const std::string& id) const;
  void add(const std::string& id, std::string reason);
  void clear();

 private:
  std::atomic<bool> empty_{true};
  mutable std::mutex mu_;
  std::map<std::string, std::string, std::less<>> ids_;
  std::string all_;  // set when every id is quarantined
};

class Watchdog {
 public:
  // Work for the thread of a given-up call, run when its call returns:
  // releases what the call used.
  using Release = std::function<void()>;
  // Runs on the watchdog's thread for a call past its limit, while the thread
  // that made it is still inside. It may take over what that thread holds
  // (the thread touches none of it again) and answers for the call.
  using OnTimeout = std::function<Release(const void* context)>;

  // Checks deadlines every `tick_ms` of `clock`'s monotonic time.
  Watchdog(const Clock& clock, int64_t tick_ms, OnTimeout on_timeout);
  ~Watchdog() { stop(); }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Stops the watchdog's thread. REQUIRES: no call is running. Idempotent.
  void stop();

  // Runs call() with a limit of `limit_ms` (0: none). Returns true iff it
  // returned in time. False: it was given up (on_timeout(context) ran first,
  // then its Release); the caller must discard the result and return at
  // once, touching nothing that on_timeout took over. `owner` (a plugin
  // image) counts given-up calls until they return.
  template <class F>
  bool run(int64_t limit_ms, const void* owner, const void* context, F&& call) {
    if (limit_ms <= 0) {
      call();
      return true;
    }
    Call c;
    c.deadline_ms = clock_.mono_ms() + limit_ms;
    c.owner = owner;
    c.context = context;
    c.worker = WorkerPool::current();
    enter(c);
    try {
      call();
    } catch (...) {
      leave(c);
      throw;
    }
    return leave(c);
  }

  // Given-up calls of `owner` that have not returned yet.
  uint32_t stuck(const void* owner) const;
  // Given-up calls that have not returned yet, and all given up so far.
  uint32_t stuck_total() const { return stuck_total_.load(); }
  uint64_t given_up_total() const { return given_up_total_.load(); }

 private:
  enum class State : uint8_t { kRunning, kGivingUp, kGivenUp };
  struct Call {
    int64_t deadline_ms = 0;
    const void* owner = nullptr;
    const void* context = nullptr;
    WorkerPool::Handle worker;
    State state = State::kRunning;
    Release release;
    Call* prev = nullptr;
    Call* next = nullptr;
  };
  // Calls in progress, spread over stripes so that threads rarely share a lock.
  struct Stripe {
    std::mutex mu;
    std::condition_variable cv;  // a given-up call's handler is done
    Call* head = nullptr;
  };
  static constexpr size_t kStripes = 16;

  Stripe& stripe();
  void enter(Call& c);
  bool leave(Call& c);
  void loop();
  void give_up(Stripe& s, Call* c);

  const Clock& clock_;
  const int64_t tick_ms_;
  OnTimeout on_timeout_;
  std::array<Stripe, kStripes> stripes_;

  mutable std::mutex stuck_mu_;
  std::atomic<uint32_t> stuck_total_{0};
  std::atomic<uint64_t> given_up_total_{0};
  std::map<const void*, uint32_t> stuck_;

  std::mutex loop_mu_;
  std::condition_variable loop_cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace aether
