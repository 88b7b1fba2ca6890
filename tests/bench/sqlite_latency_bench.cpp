// Baselines of the HTTP benchmarks on the embedded default (sqlite,
// synchronous=full), printed as one line of key=value for
// tests/bench/http_load.sh:
//  - inprocess_*: the runtime's async API on the same store and load as the
//    HTTP run (SENDERS closed-loop senders, 1000 Counter actors, DURATION s),
//    throughput and p99 latency;
//  - raw_*: raw SQLite committing the same rows (aether's schema, WAL,
//    synchronous=full) SENDERS rows to a transaction, closed loop: each
//    transaction's rows wait from its BEGIN to its durable COMMIT. p99 of
//    that wait, and rows per second.
// Usage: sqlite_latency_bench SENDERS DURATION_SECONDS
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "bench_host.hpp"
#include "raw_sqlite.hpp"
#include "runtime/runtime.hpp"
#include "store/store.hpp"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
constexpr int kActors = 1000;

fs::path fresh_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("aether-bench-" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

std::unique_ptr<aether::Journal> open_store(const fs::path& dir) {
  aether::SqliteOptions o;
  o.path = (dir / "aether.db").string();
  o.synchronous = "full";
  return std::move(aether::open_sqlite_store(o)).value();
}

double p99_ms(std::vector<double>& ms) {
  if (ms.empty()) return 0;
  std::sort(ms.begin(), ms.end());
  return ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
}

double since_ms(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// The runtime's async API (of a host as aether-host wires it: the sqlite
// store at synchronous=full), `senders` commands in flight until `end`.
void in_process(int senders, Clock::time_point end, std::vector<double>& latencies, int& failed) {
  const fs::path dir = fresh_dir("latency-runtime");
  auto host = aether::bench::start_host(aether::bench::sqlite_host_config({"counter"}, dir.string(), "full"));
  aether::Runtime* rt = &host->runtime();
  std::mutex mu;
  std::condition_variable cv;
  int finished = 0, next = 0;
  std::function<void(int)> send_next = [&](int sender) {
    if (Clock::now() >= end) {
      std::lock_guard lock(mu);
      if (++finished == senders) cv.notify_all();
      return;
    }
    int i;
    {
      std::lock_guard lock(mu);
      i = next++;
    }
    const auto start = Clock::now();
    rt->send({"default", "Counter", "a" + std::to_string(i % kActors), "Increment", R"({"by":1})", std::nullopt, ""},
             [&, start, sender](aether::CommandResult r) {
               {
                 std::lock_guard lock(mu);
                 if (r.status.is_ok()) latencies.push_back(since_ms(start)); else ++failed;
               }
               send_next(sender);
             });
  };
  for (int s = 0; s < senders; ++s) send_next(s);
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return finished == senders; });
  lock.unlock();
  (void)host->stop();
}

// Raw SQLite, `rows` rows to a transaction, until `end`.
void raw_sqlite(int rows, Clock::time_point end, std::vector<double>& latencies) {
  const fs::path dir = fresh_dir("latency-raw");
  { auto schema = open_store(dir); }  // aether's schema
  aether::bench::RawEventWriter raw((dir / "aether.db").string());
  for (int i = 0; Clock::now() < end;) {
    const auto start = Clock::now();
    raw.begin();
    for (int r = 0; r < rows; ++r, ++i) raw.insert(i, kActors);
    raw.commit();
    latencies.insert(latencies.end(), static_cast<size_t>(rows), since_ms(start));
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int senders = argc > 1 ? std::max(1, std::atoi(argv[1])) : 64;
  const double seconds = argc > 2 ? std::max(0.5, std::atof(argv[2])) : 5.0;
  const auto span = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<double> rt_lat, raw_lat;
  int failed = 0;
  auto start = Clock::now();
  in_process(senders, start + span, rt_lat, failed);
  const double rt_s = since_ms(start) / 1000;
  start = Clock::now();
  raw_sqlite(senders, start + span, raw_lat);
  const double raw_s = since_ms(start) / 1000;
  std::printf("inprocess_cps=%.0f inprocess_p99_ms=%.3f inprocess_failed=%d raw_rows_per_s=%.0f raw_p99_ms=%.3f\n",
              static_cast<double>(rt_lat.size()) / rt_s, p99_ms(rt_lat), failed,
              static_cast<double>(raw_lat.size()) / raw_s, p99_ms(raw_lat));
  return failed == 0 ? 0 : 1;
}
