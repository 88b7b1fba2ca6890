// Prometheus metrics of a host: a RuntimeObserver that counts what the
// runtime does, plus the store's commit batch sizes. Rendered in the text
// exposition format for GET /metrics.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "runtime/runtime.hpp"

namespace aether {

class Metrics : public RuntimeObserver {
 public:
  Metrics();
  ~Metrics() override;

  void on_command(const std::string& type, const char* outcome, double seconds) override;
  void on_activation(const std::string& type, uint64_t replayed, bool from_snapshot) override;
  void on_snapshot(const std::string& type) override;
  void on_events_appended(const std::string& type, size_t n) override;
  void on_commit_batch(size_t appends);

  // The store's commit batches counted so far and the appends they held.
  struct CommitBatches {
    uint64_t batches = 0;
    uint64_t appends = 0;
  };
  CommitBatches commit_batches() const;

  // The label value of every actor type not in a loaded model. Label values
  // come only from `known` (set it before commands flow; until then every
  // type is unknown), so that requests naming made-up types cannot grow the
  // metrics without bound.
  static constexpr const char* kUnknownType = "_unknown";
  void set_known_types(std::function<bool(std::string_view)> known);

  // Sets the gauge source for active actors (read at render time).
  void set_active_actors_source(std::function<double()> source);

  // A gauge, or a counter (monotonic source), read from `source` at render
  // time. Call before the first render.
  void add_gauge(const std::string& name, const std::string& help, std::function<double()> source);
  void add_counter(const std::string& name, const std::string& help, std::function<double()> source);

  // The Prometheus text format.
  std::string render();

 private:
  std::string type_label(const std::string& type);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace aether
