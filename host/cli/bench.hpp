// `aether bench`: a closed-loop load generator for a host's command API, over
// HTTP (keep-alive connections driven by a few event-loop threads) or NATS
// request/reply (a thread per client).
#pragma once

#include <cstdint>
#include <string>

namespace aether::cli {

struct BenchOptions {
  std::string url;        // HTTP base URL (http:// only)
  std::string nats_url;   // non-empty: NATS request/reply instead of HTTP
  std::string ns = "default";
  std::string token;
  std::string type = "Counter";
  std::string command = "Increment";
  std::string payload = "{\"by\":1}";
  std::string id_prefix = "bench-";
  uint64_t actors = 1000;
  uint32_t clients = 64;
  std::string duration = "10s";
  std::string timeout = "5s";
  bool json = false;
  bool progress = true;
};

// Parses "500ms", "10s", "2m" (or a bare number of seconds) into
// milliseconds; false when it is none of these or not positive.
bool parse_duration_ms(const std::string& text, int64_t& ms);

// Runs the benchmark and prints its report (readable, or JSON with
// options.json) on stdout, the progress line on stderr. Returns the exit
// code: 0 when it ran (errors are counted, not fatal), 64 on bad options,
// 2 when no request could be sent at all.
int run_bench(const BenchOptions& options);

}  // namespace aether::cli
