// The public testkit (include/aether/testkit.hpp) over the host's in-process
// TestHost: converts the host's types to the plain ones of the public header.
#include "aether/testkit.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "testkit/test_host.hpp"

namespace aether::testkit {

namespace {

constexpr size_t kMaxFailuresListed = 20;

TestHostOptions host_options(const Options& o) {
  TestHostOptions h;
  h.store = o.store;
  h.dir = o.data_dir;
  h.runtime.workers = o.workers;
  h.runtime.snapshot.every = o.snapshot_every;
  h.runtime.call_timeout_ms = o.call_timeout_ms;
  h.swap.allow_breaking = o.allow_breaking;
  h.swap.pause_timeout_ms = o.pause_timeout_ms;
  return h;
}

std::vector<Event> to_events(const std::vector<StoredEvent>& stored) {
  std::vector<Event> out;
  out.reserve(stored.size());
  for (const auto& e : stored) out.push_back(Event{e.version, e.type, e.payload});
  return out;
}

Reply to_reply(const CommandResult& r) {
  Reply out;
  out.code = status_code_name(r.status.code());
  out.reject_code = r.reject_code;
  out.message = r.status.message();
  out.version = r.version;
  out.events = to_events(r.events);
  return out;
}

SwapReport to_report(const Result<aether::SwapReport>& r) {
  SwapReport out;
  if (!r) {
    out.error = r.status().to_string();
    return out;
  }
  out.plugin = r->plugin;
  out.from_version = r->from_version;
  out.to_version = r->to_version;
  out.actors_migrated = r->actors_migrated;
  out.via_snapshot = r->via_snapshot;
  out.via_upgrade = r->via_upgrade;
  out.via_replay = r->via_replay;
  out.actors_dropped = r->actors_dropped;
  out.pause_ms = r->pause_ms;
  return out;
}

// The shared counters of a load run; the swapper waits on `done`.
struct LoadProgress {
  std::mutex mu;
  std::condition_variable cv;
  uint64_t done = 0;
  LoadReport report;

  void record(const Command& c, const Reply& r) {
    std::lock_guard<std::mutex> lock(mu);
    ++done;
    if (r.ok()) {
      ++report.ok;
    } else if (r.code == "rejected") {
      ++report.rejected;
    } else {
      ++report.failed;
      if (report.failures.size() < kMaxFailuresListed) {
        report.failures.push_back(c.type + "/" + c.id + " " + c.name + ": " + r.code + ": " +
                                  r.message);
      }
    }
    cv.notify_all();
  }
  // Waits until `n` commands are done or every sender has finished.
  void wait_for(uint64_t n, const std::atomic<unsigned>& senders_left) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done >= n || senders_left.load() == 0; });
  }
};

}  // namespace

bool LoadReport::all_steps_ok() const {
  return std::all_of(steps.begin(), steps.end(), [](const SwapReport& s) { return s.ok(); });
}

struct Host::Impl {
  explicit Impl(const Options& o) : host(host_options(o)), dir(host.dir()) {}
  TestHost host;
  std::string dir;
};

Host::Host(Options options) : impl_(std::make_unique<Impl>(options)) {}
Host::~Host() = default;

std::string Host::load(const std::string& file) {
  Status s = impl_->host.load(file);
  return s ? std::string() : s.to_string();
}

Reply Host::send(const std::string& type, const std::string& id, const std::string& command,
                 const std::string& payload, const std::string& ns) {
  return to_reply(impl_->host.send(type, id, command, payload, ns));
}

Reply Host::send(const Command& c) { return send(c.type, c.id, c.name, c.payload, c.ns); }

State Host::state(const std::string& type, const std::string& id, const std::string& ns) {
  auto r = impl_->host.state(type, id, ns);
  State out;
  if (!r) {
    out.error = r.status().to_string();
    return out;
  }
  out.found = true;
  out.version = r->version;
  out.view = r->view;
  return out;
}

std::string Host::view(const std::string& type, const std::string& id, const std::string& ns) {
  return impl_->host.view(type, id, ns);
}

std::vector<Event> Host::events(const std::string& type, const std::string& id, uint64_t from,
                                uint64_t limit, const std::string& ns) {
  auto r = impl_->host.runtime().events(ns, type, id, from, limit);
  return r ? to_events(*r) : std::vector<Event>{};
}

SwapReport Host::swap(const std::string& plugin, const std::string& file) {
  return to_report(impl_->host.swap(plugin, file));
}

SwapReport Host::rollback(const std::string& plugin) {
  return to_report(impl_->host.rollback(plugin));
}

std::string Host::version(const std::string& plugin) const { return impl_->host.version(plugin); }

void Host::restart() { impl_->host.restart(); }

void Host::passivate_all() { impl_->host.runtime().passivate_all(); }

const std::string& Host::data_dir() const { return impl_->dir; }

LoadReport Host::swap_under_load(const LoadPlan& plan) {
  LoadProgress progress;
  const unsigned threads = std::max(1u, plan.threads);
  std::atomic<unsigned> senders_left{threads};
  std::vector<std::thread> senders;
  for (unsigned t = 0; t < threads; ++t) {
    // Thread t sends commands t, t + threads, ... of the whole run.
    const uint64_t share = plan.commands / threads + (t < plan.commands % threads ? 1 : 0);
    senders.emplace_back([this, &plan, &progress, &senders_left, t, share] {
      for (uint64_t i = 0; i < share; ++i) {
        Command c;
        try {
          c = plan.command(t, i);
          progress.record(c, send(c));
        } catch (const std::exception& e) {
          Reply r;
          r.code = "internal";
          r.message = std::string("the load plan threw: ") + e.what();
          progress.record(c, r);
        }
      }
      std::lock_guard<std::mutex> lock(progress.mu);
      --senders_left;
      progress.cv.notify_all();
    });
  }
  // Step k of n runs once k/(n+1) of the commands are done.
  const size_t n = plan.swaps.size() + (plan.rollback ? 1 : 0);
  std::vector<SwapReport> steps;
  for (size_t k = 0; k < n; ++k) {
    progress.wait_for(plan.commands * (k + 1) / (n + 1), senders_left);
    steps.push_back(k < plan.swaps.size() ? swap(plan.plugin, plan.swaps[k])
                                          : rollback(plan.plugin));
  }
  for (auto& s : senders) s.join();
  progress.report.sent = progress.done;
  progress.report.steps = std::move(steps);
  return std::move(progress.report);
}

}  // namespace aether::testkit
