// Command throughput while a reload's shadow check runs: plugin tally with
// 10,000 stored actors of 100 events each; 4 threads send commands to 1,000
// active actors of the same plugin for 4 s, for as long as a dry-run check
// replays every stored actor (sample_percent 100) through both versions,
// and for 4 s again, in the same host (a fresh host per round, so that
// every check replays the same histories). The argument is the check's
// plugins.shadow_check.cpu_percent. Printed, over 7 rounds: the median of
// each round's ratio (throughput_ratio; 1.0 = no slowdown) with its
// smallest and largest, the same for the two halves without a check against
// each other (aa_*: the noise), the check's own figures and its peak
// working memory against its bound.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include <sys/resource.h>

#include "ratio_reporter.hpp"
#include "runtime/plugin_manager.hpp"
#include "store/store.hpp"
#include "testkit/test_host.hpp"

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kStoredActors = 10000;
constexpr int kEventsPerActor = 100;
constexpr int kHotActors = 1000;
constexpr int kSenders = 4;
constexpr int kMinCommandsPerSender = 1000;
constexpr uint64_t kMemoryLimit = 16ull << 20;

std::string tp(const char* n) { return std::string(AETHER_TEST_PLUGIN_DIR) + "/" + n + ".so"; }

// 10,000 actors with 100 Added events each, written straight to the store.
void fill(aether::Journal& store) {
  std::vector<aether::NewEvent> events(kEventsPerActor, aether::NewEvent{"Added", R"({"n":1})"});
  for (int i = 0; i < kStoredActors; ++i) {
    aether::AppendRequest req;
    req.key = {"default", "Tally", "p" + std::to_string(i)};
    req.events = events;
    if (!store.append_sync(req).status.is_ok()) std::abort();
  }
}

// Sends commands from kSenders threads until `stop` turns true and at least
// kMinCommandsPerSender each were sent; returns commands per second.
// The whole process's CPU time so far, in seconds.
double process_cpu_seconds() {
  rusage u{};
  (void)getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

// Cores the process kept busy during the last send_until, on average.
double g_cores = 0;

double send_until(aether::testkit::TestHost& host, const std::function<bool()>& stop) {
  const auto t0 = Clock::now();
  const double cpu0 = process_cpu_seconds();
  std::atomic<uint64_t> sent{0};
  std::vector<std::thread> senders;
  for (int s = 0; s < kSenders; ++s) {
    senders.emplace_back([&, s] {
      for (int i = 0; i < kMinCommandsPerSender || !stop(); ++i) {
        auto r = host.send("Tally", "h" + std::to_string((s * 7919 + i) % kHotActors), "Add", R"({"n":1})");
        if (!r.status.is_ok()) std::abort();
        sent.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  for (auto& t : senders) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  g_cores = (process_cpu_seconds() - cpu0) / seconds;
  return static_cast<double>(sent.load()) / seconds;
}

// Commands per second for `seconds` without a check.
double without_check(aether::testkit::TestHost& host, double seconds) {
  const auto until = Clock::now() + std::chrono::duration<double>(seconds);
  return send_until(host, [until] { return Clock::now() >= until; });
}

// Commands per second for as long as a dry-run check of 1.1.0 (same model
// and schema: no differences) runs on another thread.
double during_check(aether::testkit::TestHost& host, aether::ShadowReport& report) {
  std::atomic<bool> check_done{false};
  aether::ReloadCheck check;
  std::thread checker([&] {
    aether::ReloadRequest r;
    r.plugin = "tally";
    r.file = tp("tally_v1_1");
    r.dry_run = true;
    (void)host.plugins().reload(r, &check);
    check_done = true;
  });
  const double rate = send_until(host, [&] { return check_done.load(); });
  checker.join();
  report = check.report;
  return rate;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// A host of its own for each round, so that every check replays the same
// histories (commands add events to the active actors). A round sends
// commands for kSideSeconds without a check (A), for as long as a check
// runs (B), and for kSideSeconds without one again (C): its ratio is B
// against the mean of A and C (so that a drift over the host's life favours
// neither), and C against A is what the same load varies by on its own
// (the noise, "A/A").
constexpr double kSideSeconds = 4.0;

void BM_CommandsDuringShadowCheck(benchmark::State& state) {
  aether::testkit::TestHostOptions o;
  o.runtime.max_active_actors = 4 * kHotActors;
  aether::ShadowOptions shadow;
  shadow.sample = 0;
  shadow.sample_percent = 100;
  shadow.memory_limit_bytes = kMemoryLimit;
  shadow.time_limit_ms = 600000;
  shadow.cpu_percent = static_cast<uint32_t>(state.range(0));
  o.shadow = shadow;
  std::vector<double> with, without, ratio, aa, check_ms, check_cpu_ms, check_events, cores_with, cores_without;
  aether::ShadowReport last;
  uint64_t peak = 0;
  for (auto _ : state) {
    state.PauseTiming();
    aether::testkit::TestHost host(o);
    if (!host.load(tp("tally_v1")).is_ok()) return state.SkipWithError("load failed");
    fill(host.store());
    for (int i = 0; i < kHotActors; ++i) (void)host.send("Tally", "h" + std::to_string(i), "Add", R"({"n":1})");
    state.ResumeTiming();
    const double a = without_check(host, kSideSeconds);
    const double cores_a = g_cores;
    const double b = during_check(host, last);
    cores_with.push_back(g_cores);
    const double c = without_check(host, kSideSeconds);
    cores_without.push_back((cores_a + g_cores) / 2);
    with.push_back(b);
    without.push_back((a + c) / 2);
    ratio.push_back(b / ((a + c) / 2));
    aa.push_back(c / a);
    peak = std::max(peak, last.peak_memory_bytes);
    check_ms.push_back(last.elapsed_ms);
    check_cpu_ms.push_back(last.cpu_ms);
    check_events.push_back(static_cast<double>(last.events_replayed));
    if (!last.complete) return state.SkipWithError(("the check did not finish: " + last.stopped_by).c_str());
  }
  state.counters["without_per_s"] = median(without);
  state.counters["during_per_s"] = median(with);
  state.counters["throughput_ratio"] = median(ratio);
  state.counters["ratio_min"] = *std::min_element(ratio.begin(), ratio.end());
  state.counters["ratio_max"] = *std::max_element(ratio.begin(), ratio.end());
  state.counters["aa_median"] = median(aa);
  state.counters["aa_min"] = *std::min_element(aa.begin(), aa.end());
  state.counters["aa_max"] = *std::max_element(aa.begin(), aa.end());
  state.counters["check_actors"] = static_cast<double>(last.actors_checked);
  state.counters["check_events"] = median(check_events);
  state.counters["check_ms"] = median(check_ms);
  state.counters["check_cpu_ms"] = median(check_cpu_ms);
  state.counters["cores_during"] = median(cores_with);
  state.counters["cores_without"] = median(cores_without);
  state.counters["check_peak_bytes"] = static_cast<double>(peak);
  state.counters["check_limit_bytes"] = static_cast<double>(last.memory_limit_bytes);
  if (peak > last.memory_limit_bytes) state.SkipWithError("the check passed its memory bound");
}
BENCHMARK(BM_CommandsDuringShadowCheck)->Arg(100)->Arg(25)->Arg(10)->Iterations(7)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) { return aether::bench::run_with_ratios(argc, argv, {}); }
