// Google Benchmark main with ratios: runs the registered benchmarks with the
// console reporter, then prints each requested ratio of two benchmarks'
// per-iteration times (or items/s), measured in the same run.
#pragma once

#include <benchmark/benchmark.h>

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

class RecordingReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs) {
      if (r.run_type == Run::RT_Iteration && !r.error_occurred) {
        times_[r.benchmark_name()] = r.GetAdjustedRealTime();
        for (const auto& [k, c] : r.counters) counters_[r.benchmark_name() + ":" + k] = c.value;
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }
  const std::map<std::string, double>& times() const { return times_; }
  const std::map<std::string, double>& counters() const { return counters_; }

 private:
  std::map<std::string, double> times_;
  std::map<std::string, double> counters_;
};

// Prints "ratio <label>: <num>/<den> = X.XXx  (goal)" for each ratio whose
// two benchmarks ran. Time ratios: numerator time / denominator time.
inline void print_ratios(const RecordingReporter& rep, const std::vector<Ratio>& ratios) {
  std::printf("\n");
  for (const auto& r : ratios) {
    auto a = rep.times().find(r.numerator);
    auto b = rep.times().find(r.denominator);
    if (a == rep.times().end() || b == rep.times().end() || b->second == 0) continue;
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
