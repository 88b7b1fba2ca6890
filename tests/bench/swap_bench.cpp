// Command stalls during a hot swap: 10,000 active actors of plugin tally,
// 8 threads sending commands without pause; the plugin is swapped from v1 to
// v2 (another state schema: every active actor goes through upgrade_state).
// Recorded: the latency of every command that was in flight during the swap
// (max and p99) against the same load without a swap.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "ratio_reporter.hpp"
#include "testkit/test_host.hpp"

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kActors = 10000;
constexpr int kSenders = 8;

std::string tp(const char* n) { return std::string(AETHER_TEST_PLUGIN_DIR) + "/" + n + ".so"; }

struct Sample {
  Clock::time_point start, end;
};

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

void run(benchmark::State& state, bool do_swap) {
  aether::testkit::TestHostOptions o;
  o.runtime.max_active_actors = 2 * kActors;
  aether::testkit::TestHost host(o);
  if (!host.load(tp("tally_v1")).is_ok()) return state.SkipWithError("load failed");
  for (int i = 0; i < kActors; ++i) (void)host.send("Tally", "a" + std::to_string(i), "Add", R"({"n":1})");
  double worst_max = 0, worst_p99 = 0, worst_pause = 0;
  for (auto _ : state) {
    std::atomic<bool> stop{false};
    std::mutex mu;
    std::vector<Sample> samples;
    std::vector<std::thread> senders;
    for (int s = 0; s < kSenders; ++s) {
      senders.emplace_back([&, s] {
        std::vector<Sample> mine;
        for (uint32_t i = s; !stop.load(); i += 7919) {
          const auto t0 = Clock::now();
          auto r = host.send("Tally", "a" + std::to_string(i % kActors), "Add", R"({"n":1})");
          if (!r.status.is_ok()) std::abort();
          mine.push_back({t0, Clock::now()});
        }
        std::lock_guard lock(mu);
        samples.insert(samples.end(), mine.begin(), mine.end());
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const auto w0 = Clock::now();
    double pause_ms = 0;
    if (do_swap) {
      auto rep = host.swap("tally", tp("tally_v2"));
      if (!rep) state.SkipWithError(rep.status().message().c_str());
      else pause_ms = rep->pause_ms;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(60));
    }
    const auto w1 = Clock::now();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stop = true;
    for (auto& t : senders) t.join();
    // Commands in flight at any time during [w0, w1].
    std::vector<double> lat;
    for (const auto& s : samples) {
      if (s.end >= w0 && s.start <= w1) lat.push_back(ms(s.end - s.start));
    }
    std::sort(lat.begin(), lat.end());
    state.counters["commands_in_window"] = static_cast<double>(lat.size());
    if (!lat.empty()) {
      worst_max = std::max(worst_max, lat.back());
      worst_p99 = std::max(worst_p99, lat[lat.size() * 99 / 100]);
    }
    worst_pause = std::max(worst_pause, pause_ms);
    if (do_swap) (void)host.rollback("tally");
  }
  // The worst of the iterations.
  state.counters["max_ms"] = worst_max;
  state.counters["p99_ms"] = worst_p99;
  state.counters["swap_pause_ms"] = worst_pause;
}

void BM_CommandsDuringSwap10kActors(benchmark::State& s) { run(s, true); }
void BM_CommandsWithoutSwap10kActors(benchmark::State& s) { run(s, false); }
BENCHMARK(BM_CommandsDuringSwap10kActors)->Iterations(3)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CommandsWithoutSwap10kActors)->Iterations(3)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) { return aether::bench::run_with_ratios(argc, argv, {}); }
