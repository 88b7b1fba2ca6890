// Time as a seam: the host asks a Clock, so tests can make time pass.
#pragma once

#include <chrono>
#include <cstdint>

namespace aether {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch (wall clock, for event timestamps).
  virtual int64_t wall_ms() const = 0;
  // Monotonic milliseconds (for timeouts and idle tracking).
  virtual int64_t mono_ms() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t wall_ms() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  int64_t mono_ms() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  // The process-wide instance.
  static const SystemClock& instance() {
    static const SystemClock c;
    return c;
  }
};

}  // namespace aether
