// apply through the ABI + SDK (host ActorType::apply -> loaded plugin ->
// JSON parse -> reducer) against the same reducer called directly with the
// same JSON parse, and JSON parsing alone, so the ABI's own cost shows.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "bench_reducer.hpp"
#include "plugin/plugin.hpp"
#include "ratio_reporter.hpp"

namespace {

using aether::bench::kDepositedPayload;

void BM_JsonParseOnly(benchmark::State& st) {
  const std::string payload = kDepositedPayload;
  for (auto _ : st) {
    auto j = nlohmann::json::parse(payload);
    benchmark::DoNotOptimize(j);
  }
}
BENCHMARK(BM_JsonParseOnly)->Repetitions(7);

void BM_ApplyDirect(benchmark::State& st) {
  const std::string payload = kDepositedPayload;
  aether::bench::Account s;
  for (auto _ : st) {
    aether::bench::apply_deposited(s, nlohmann::json::parse(payload));
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_ApplyDirect)->Repetitions(7);

void BM_ApplyThroughAbi(benchmark::State& st) {
  auto plugin = aether::Plugin::open(std::string(AETHER_BENCH_PLUGIN_DIR) + "/bench_account.so");
  if (!plugin) {
    st.SkipWithError(plugin.status().message().c_str());
    return;
  }
  const aether::ActorType* t = (*plugin)->find_type("BenchAccount");
  void* state = *t->create();
  const std::string payload = kDepositedPayload;
  uint64_t version = 0;
  for (auto _ : st) {
    aether::Status s = t->apply(state, 0, payload, ++version);
    benchmark::DoNotOptimize(s);
  }
  t->destroy(state);
}
BENCHMARK(BM_ApplyThroughAbi)->Repetitions(7);

// The reducer alone on a pre-parsed document: the floor below both paths.
void BM_ReducerOnlyPreParsed(benchmark::State& st) {
  const auto doc = nlohmann::json::parse(kDepositedPayload);
  aether::bench::Account s;
  for (auto _ : st) {
    aether::bench::apply_deposited(s, doc);
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_ReducerOnlyPreParsed)->Repetitions(7);

}  // namespace

int main(int argc, char** argv) {
  // Each benchmark runs 7 times, interleaved with the others in a random
  // order, and counts with its median: a VM's noise then hits both sides of
  // a ratio alike instead of one benchmark's whole run.
  std::vector<char*> args(argv, argv + argc);
  std::string interleave = "--benchmark_enable_random_interleaving=true";
  args.push_back(interleave.data());
  argc = static_cast<int>(args.size());
  argv = args.data();
  return aether::bench::run_with_ratios(
      argc, argv,
      {{"apply: ABI+SDK / direct", "BM_ApplyThroughAbi/repeats:7", "BM_ApplyDirect/repeats:7", "goal <= 1.3x"},
       {"apply: JSON parse share of direct", "BM_JsonParseOnly/repeats:7", "BM_ApplyDirect/repeats:7", ""}});
}
