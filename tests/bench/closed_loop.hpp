// A closed-loop load driver: `in_flight` senders, each sending its next
// command when the reply to its last one arrives, through the runtime's async
// API (as the HTTP and NATS ingress use it), until `total` commands were sent.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>

#include "runtime/runtime.hpp"

namespace aether::bench {

// Returns the number of commands that did not succeed. Blocks until all
// replies arrived.
inline int run_closed_loop(Runtime& rt, int in_flight, int total,
                           const std::function<Command(int)>& command_for) {
  std::atomic<int> next{0}, failed{0}, finished{0};
  std::mutex mu;
  std::condition_variable cv;
  std::function<void()> send_next = [&] {
    const int i = next.fetch_add(1);
    if (i >= total) {
      if (finished.fetch_add(1) + 1 == in_flight) {
        std::lock_guard lock(mu);
        cv.notify_all();
      }
      return;
    }
    rt.send(command_for(i), [&](CommandResult r) {
      if (!r.status.is_ok()) failed.fetch_add(1);
      send_next();
    });
  };
  for (int s = 0; s < in_flight; ++s) send_next();
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return finished.load() == in_flight; });
  return failed.load();
}

}  // namespace aether::bench
