// Test support: waiting for a condition, bounded by time rather than by a
// count of polls. A passing run returns as soon as the condition holds, so
// the bound can be generous: a sanitizer build under `ctest -j2` on two
// cores runs several times slower than a quiet release build.
#pragma once

#include <chrono>
#include <thread>

namespace aether::test {

// The default bound of a wait for something that a healthy system does at
// once (a background thread's next step, a reply, a log line).
inline constexpr int kWaitSeconds = 30;

// Whether this build runs under a sanitizer (make check-asan/check-tsan):
// everything, the hosts a test starts included, runs several times slower
// and uses more memory (raw_http.hpp's RSS bounds apply to the plain build).
#if defined(__has_feature)
#define AETHER_TEST_HAS_FEATURE(x) __has_feature(x)
#else
#define AETHER_TEST_HAS_FEATURE(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || AETHER_TEST_HAS_FEATURE(address_sanitizer)
inline constexpr bool kAddressSanitized = true;
#else
inline constexpr bool kAddressSanitized = false;
#endif
#if defined(__SANITIZE_THREAD__) || AETHER_TEST_HAS_FEATURE(thread_sanitizer)
inline constexpr bool kThreadSanitized = true;
#else
inline constexpr bool kThreadSanitized = false;
#endif
inline constexpr bool kSanitizedBuild = kAddressSanitized || kThreadSanitized;

// Polls `done` every `poll_ms` until it holds or `seconds` have passed;
// returns whether it held (checked once more at the bound).
template <class F>
bool eventually(F&& done, int seconds = kWaitSeconds, int poll_ms = 10) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
  }
  return done();
}

}  // namespace aether::test
