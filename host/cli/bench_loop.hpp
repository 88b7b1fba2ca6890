// What `aether bench`'s parts share (bench.cpp, bench_http.cpp): the plan of
// requests, the counters, and the event-driven HTTP clients.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace aether::cli {

using BenchClock = std::chrono::steady_clock;

// Counters shared by the clients (for the progress line) and what each
// client keeps for itself (merged at the end).
struct Totals {
  std::atomic<uint64_t> sent{0}, ok{0}, errors{0};
};

struct ClientResult {
  std::vector<uint32_t> latencies_us;  // of the successful commands
  std::map<std::string, uint64_t> errors;

  // A command answered with success, sent at `start`.
  void ok(Totals& totals, BenchClock::time_point start) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(BenchClock::now() - start).count();
    latencies_us.push_back(static_cast<uint32_t>(std::min<int64_t>(us, UINT32_MAX)));
    totals.ok.fetch_add(1, std::memory_order_relaxed);
  }
  // A command that failed with error `code`.
  void error(Totals& totals, const std::string& code) {
    ++errors[code];
    totals.errors.fetch_add(1, std::memory_order_relaxed);
  }
};

// What a client needs to send commands: the targets (one per actor) and the
// body, built once.
struct Plan {
  std::vector<std::string> targets;  // HTTP requests or NATS subjects
  std::string body;
  int64_t timeout_ms = 5000;
  BenchClock::time_point end;
};

struct HttpTarget {
  std::string host;
  std::string port;
};

// The error code of an error reply: its {"error":{"code"}}, else http_<status>.
std::string error_code_of(int status, const std::string& body);

// Reads one reply from the front of `buffer`: kDone removes it and sets
// `status`, `body` and `close_after` (the server said Connection: close);
// kMore needs more bytes; kBad is not a reply bench reads (no
// Content-Length, a head over 64 KiB or a body over 64 MiB).
enum class ReplyParse { kMore, kBad, kDone };
ReplyParse parse_reply(std::string& buffer, int& status, std::string& body, bool& close_after);

// Runs `clients` closed-loop HTTP clients (client c sends to targets c,
// c + clients, ...) on a few event-loop threads until plan.end, each with
// one request in flight on its keep-alive connection; fills results[c].
// False with `error` when the target's address cannot be resolved.
bool run_http_clients(const Plan& plan, const HttpTarget& target, uint32_t clients, Totals& totals,
                      std::vector<ClientResult>& results, std::string& error);

}  // namespace aether::cli
