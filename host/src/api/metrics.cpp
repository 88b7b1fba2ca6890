#include "api/metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <cstdint>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace aether {

namespace {

// Outcomes are "ok", "rejected" or a status code's name: a fixed set. Anything
// else (a caller passing free text) is counted as "other".
const char* outcome_label(const char* outcome) {
  static const std::vector<const char*> fixed = [] {
    std::vector<const char*> v{"rejected"};
    for (unsigned i = 0; i <= UINT8_MAX; ++i) {
      const char* name = status_code_name(static_cast<StatusCode>(i));
      if (std::strcmp(name, "unknown") != 0) v.push_back(name);
    }
    return v;
  }();
  for (const char* name : fixed) {
    if (std::strcmp(name, outcome) == 0) return name;
  }
  return "other";
}

}  // namespace

struct Metrics::Impl {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  prometheus::Family<prometheus::Counter>& commands =
      prometheus::BuildCounter()
          .Name("aether_commands_total")
          .Help("Commands handled, by actor type and outcome (ok, rejected, or an error code)")
          .Register(*registry);
  prometheus::Family<prometheus::Histogram>& latency =
      prometheus::BuildHistogram()
          .Name("aether_command_duration_seconds")
          .Help("Time from accepting a command to its reply")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& active =
      prometheus::BuildGauge().Name("aether_active_actors").Help("Actors with their state in memory").Register(*registry);
  prometheus::Family<prometheus::Counter>& appended =
      prometheus::BuildCounter()
          .Name("aether_events_appended_total")
          .Help("Events written to the store, by actor type")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& snapshots =
      prometheus::BuildCounter()
          .Name("aether_snapshots_taken_total")
          .Help("Snapshots saved, by actor type")
          .Register(*registry);
  prometheus::Family<prometheus::Histogram>& replay =
      prometheus::BuildHistogram()
          .Name("aether_replay_events")
          .Help("Events replayed per activation, by actor type")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& activations =
      prometheus::BuildCounter()
          .Name("aether_activations_total")
          .Help("Actor activations, by actor type and whether a snapshot was used")
          .Register(*registry);
  prometheus::Family<prometheus::Histogram>& batch =
      prometheus::BuildHistogram()
          .Name("aether_store_commit_batch_size")
          .Help("Appends carried by one store commit (group commit)")
          .Register(*registry);
  prometheus::Gauge& active_gauge = active.Add({});
  prometheus::Histogram& batch_hist =
      batch.Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024});
  std::mutex mu;
  std::function<bool(std::string_view)> known_type;  // under mu
  std::function<double()> active_source;
  std::vector<std::pair<prometheus::Gauge*, std::function<double()>>> gauges;
  std::vector<std::pair<prometheus::Counter*, std::function<double()>>> counters;

  // What a command's metrics touch, by type label (a known type or
  // kUnknownType, so bounded by the model): looking a metric up by its
  // labels in its family on every command costs a map of strings and a lock.
  struct PerType {
    std::string label;
    prometheus::Histogram* latency = nullptr;
    prometheus::Counter* appended = nullptr;
    std::vector<std::pair<const char*, prometheus::Counter*>> outcomes;  // outcome_label() pointers
  };
  std::unordered_map<std::string, PerType> per_type;  // under mu

  // The label for `type` and its cached metrics (call with mu held).
  PerType& type_metrics(const std::string& type) {
    const std::string& label = known_type && known_type(type) ? type : kUnknown();
    auto it = per_type.find(label);
    if (it != per_type.end()) return it->second;
    PerType& p = per_type[label];
    p.label = label;
    p.latency = &latency.Add({{"type", label}}, latency_buckets());
    p.appended = &appended.Add({{"type", label}});
    return p;
  }
  prometheus::Counter& outcome_counter(PerType& p, const char* outcome) {
    for (const auto& [name, counter] : p.outcomes) {
      if (name == outcome) return *counter;
    }
    auto& c = commands.Add({{"type", p.label}, {"outcome", outcome}});
    p.outcomes.emplace_back(outcome, &c);
    return c;
  }
  static const std::string& kUnknown() {
    static const std::string s = Metrics::kUnknownType;
    return s;
  }

  static const prometheus::Histogram::BucketBoundaries& latency_buckets() {
    static const prometheus::Histogram::BucketBoundaries b{0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                           0.025,  0.05,  0.1,    0.25,  0.5,
                                                           1,      2.5,   5};
    return b;
  }
  static const prometheus::Histogram::BucketBoundaries& replay_buckets() {
    static const prometheus::Histogram::BucketBoundaries b{0, 1, 10, 100, 1000, 10000, 100000, 1000000};
    return b;
  }
};

Metrics::Metrics() : impl_(std::make_unique<Impl>()) {}
Metrics::~Metrics() = default;

void Metrics::set_known_types(std::function<bool(std::string_view)> known) {
  std::lock_guard lock(impl_->mu);
  impl_->known_type = std::move(known);
}

std::string Metrics::type_label(const std::string& type) {
  std::lock_guard lock(impl_->mu);
  return impl_->known_type && impl_->known_type(type) ? type : kUnknownType;
}

void Metrics::on_command(const std::string& type, const char* outcome, double seconds) {
  prometheus::Counter* counter = nullptr;
  prometheus::Histogram* latency = nullptr;
  {
    std::lock_guard lock(impl_->mu);
    auto& p = impl_->type_metrics(type);
    counter = &impl_->outcome_counter(p, outcome_label(outcome));
    latency = p.latency;
  }
  counter->Increment();
  latency->Observe(seconds);
}

void Metrics::on_activation(const std::string& type, uint64_t replayed, bool from_snapshot) {
  const std::string label = type_label(type);
  impl_->replay.Add({{"type", label}}, Impl::replay_buckets()).Observe(static_cast<double>(replayed));
  impl_->activations.Add({{"type", label}, {"snapshot", from_snapshot ? "yes" : "no"}}).Increment();
}

void Metrics::on_snapshot(const std::string& type) {
  impl_->snapshots.Add({{"type", type_label(type)}}).Increment();
}

void Metrics::on_events_appended(const std::string& type, size_t n) {
  prometheus::Counter* counter = nullptr;
  {
    std::lock_guard lock(impl_->mu);
    counter = impl_->type_metrics(type).appended;
  }
  counter->Increment(static_cast<double>(n));
}

void Metrics::on_commit_batch(size_t appends) { impl_->batch_hist.Observe(static_cast<double>(appends)); }

Metrics::CommitBatches Metrics::commit_batches() const {
  const prometheus::ClientMetric m = impl_->batch_hist.Collect();
  return {m.histogram.sample_count, static_cast<uint64_t>(m.histogram.sample_sum)};
}

void Metrics::set_active_actors_source(std::function<double()> source) {
  std::lock_guard lock(impl_->mu);
  impl_->active_source = std::move(source);
}

void Metrics::add_gauge(const std::string& name, const std::string& help, std::function<double()> source) {
  std::lock_guard lock(impl_->mu);
  auto& family = prometheus::BuildGauge().Name(name).Help(help).Register(*impl_->registry);
  impl_->gauges.push_back({&family.Add({}), std::move(source)});
}

void Metrics::add_counter(const std::string& name, const std::string& help, std::function<double()> source) {
  std::lock_guard lock(impl_->mu);
  auto& family = prometheus::BuildCounter().Name(name).Help(help).Register(*impl_->registry);
  impl_->counters.push_back({&family.Add({}), std::move(source)});
}

std::string Metrics::render() {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->active_source) impl_->active_gauge.Set(impl_->active_source());
    for (auto& [g, source] : impl_->gauges) g->Set(source());
    for (auto& [c, source] : impl_->counters) {
      const double now = source();
      if (now > c->Value()) c->Increment(now - c->Value());
    }
  }
  return prometheus::TextSerializer().Serialize(impl_->registry->Collect());
}

}  // namespace aether
