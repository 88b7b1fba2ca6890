// Google Benchmark main with ratios: runs the registered benchmarks with the
// console reporter, then prints each requested ratio of two benchmarks'
// per-iteration times (or items/s), measured in the same run.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace aether::bench {

struct Ratio {
  std::string label;
  std::string numerator;    // benchmark name (as printed)
  std::string denominator;  // benchmark name
  const char* goal = "";    // text shown beside the figure
};

// A benchmark that ran several times (repetitions) counts with the median of
// its runs.
class RecordingReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs) {
      if (r.run_type == Run::RT_Iteration && !r.error_occurred) {
        runs_[r.benchmark_name()].push_back(r.GetAdjustedRealTime());
        for (const auto& [k, c] : r.counters) counters_[r.benchmark_name() + ":" + k] = c.value;
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }
  std::map<std::string, double> times() const {
    std::map<std::string, double> out;
    for (auto [name, v] : runs_) {
      std::sort(v.begin(), v.end());
      out[name] = v.size() % 2 == 1 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
    }
    return out;
  }
  const std::map<std::string, double>& counters() const { return counters_; }

 private:
  std::map<std::string, std::vector<double>> runs_;
  std::map<std::string, double> counters_;
};

// Prints "ratio <label>: <num>/<den> = X.XXx  (goal)" for each ratio whose
// two benchmarks ran. Time ratios: numerator time / denominator time.
inline void print_ratios(const RecordingReporter& rep, const std::vector<Ratio>& ratios) {
  std::printf("\n");
  const auto times = rep.times();
  for (const auto& r : ratios) {
    auto a = times.find(r.numerator);
    auto b = times.find(r.denominator);
    if (a == times.end() || b == times.end() || b->second == 0) continue;
    std::printf("ratio %-40s %.3fx  (%s / %s)  %s\n", r.label.c_str(), a->second / b->second,
                r.numerator.c_str(), r.denominator.c_str(), r.goal);
  }
}

inline int run_with_ratios(int argc, char** argv, const std::vector<Ratio>& ratios) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  RecordingReporter rep;
  benchmark::RunSpecifiedBenchmarks(&rep);
  print_ratios(rep, ratios);
  std::fflush(stdout);
  benchmark::Shutdown();
  return 0;
}

}  // namespace aether::bench
