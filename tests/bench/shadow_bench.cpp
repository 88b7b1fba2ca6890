// Command throughput while a reload's shadow check runs: plugin tally with
// 10,000 stored actors of 100 events each; 4 threads send 20,000 commands to
// 1,000 active actors of the same plugin while the check replays every
// stored actor (sample_percent 100) through both versions, against the same
// commands without a check (median of 3 alternating rounds, ratio printed as
// throughput_ratio; 1.0 = no slowdown). Also recorded: the check's own
// figures and its peak working memory against its bound.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

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
constexpr int kCommandsPerSender = 5000;
constexpr uint64_t kMemoryLimit = 16ull << 20;

std::string tp(const char* n) { return std::string(AETHER_TEST_PLUGIN_DIR) + "/" + n + ".so"; }

// 10,000 actors with 100 Added events each, written straight to the store.
void fill(aether::Store& store) {
  std::vector<aether::NewEvent> events(kEventsPerActor, aether::NewEvent{"Added", R"({"n":1})"});
  for (int i = 0; i < kStoredActors; ++i) {
    aether::AppendRequest req;
    req.key = {"default", "Tally", "p" + std::to_string(i)};
    req.events = events;
    if (!store.append_sync(req).status.is_ok()) std::abort();
  }
}

// Sends kSenders x kCommandsPerSender commands; returns seconds.
double send_all(aether::testkit::TestHost& host) {
  const auto t0 = Clock::now();
  std::vector<std::thread> senders;
  for (int s = 0; s < kSenders; ++s) {
    senders.emplace_back([&, s] {
      for (int i = 0; i < kCommandsPerSender; ++i) {
        auto r = host.send("Tally", "h" + std::to_string((s * 7919 + i) % kHotActors), "Add", R"({"n":1})");
        if (!r.status.is_ok()) std::abort();
      }
    });
  }
  for (auto& t : senders) t.join();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Commands per second while a dry-run check of 1.1.0 (same model and
// schema: no differences) runs on another thread; `covered` turns false if
// the check ended before the commands did.
double during_check(aether::testkit::TestHost& host, aether::ShadowReport& report, bool& covered) {
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
  const double seconds = send_all(host);
  covered = covered && !check_done.load();
  checker.join();
  report = check.report;
  return kSenders * kCommandsPerSender / seconds;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Rounds alternate: the same commands without a check, then during one, in
// the same host, so that the machine's load moves both alike.
void BM_CommandsDuringShadowCheck(benchmark::State& state) {
  aether::testkit::TestHostOptions o;
  o.runtime.max_active_actors = 4 * kHotActors;
  aether::ShadowOptions shadow;
  shadow.sample = 0;
  shadow.sample_percent = 100;
  shadow.memory_limit_bytes = kMemoryLimit;
  shadow.time_limit_ms = 600000;
  o.shadow = shadow;
  aether::testkit::TestHost host(o);
  if (!host.load(tp("tally_v1")).is_ok()) return state.SkipWithError("load failed");
  fill(host.store());
  for (int i = 0; i < kHotActors; ++i) (void)host.send("Tally", "h" + std::to_string(i), "Add", R"({"n":1})");
  std::vector<double> with, without;
  aether::ShadowReport last;
  bool covered = true;
  uint64_t peak = 0;
  for (auto _ : state) {
    without.push_back(kSenders * kCommandsPerSender / send_all(host));
    with.push_back(during_check(host, last, covered));
    peak = std::max(peak, last.peak_memory_bytes);
  }
  state.counters["without_per_s"] = median(without);
  state.counters["during_per_s"] = median(with);
  state.counters["throughput_ratio"] = median(with) / median(without);
  state.counters["check_actors"] = static_cast<double>(last.actors_checked);
  state.counters["check_events"] = static_cast<double>(last.events_replayed);
  state.counters["check_ms"] = last.elapsed_ms;
  state.counters["check_peak_bytes"] = static_cast<double>(peak);
  state.counters["check_limit_bytes"] = static_cast<double>(last.memory_limit_bytes);
  state.counters["check_covered_commands"] = covered ? 1 : 0;
  if (peak > last.memory_limit_bytes) state.SkipWithError("the check passed its memory bound");
}
BENCHMARK(BM_CommandsDuringShadowCheck)->Iterations(3)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) { return aether::bench::run_with_ratios(argc, argv, {}); }
