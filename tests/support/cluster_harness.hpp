// Test and benchmark support for clusters: real aether-host processes on a
// 3-server NATS cluster (config/cluster.yaml), and a steady command load over
// NATS request/reply that counts every reply per actor.
#pragma once

#include <httplib.h>
#include <nats/nats.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/host_process.hpp"
#include "support/nats_cluster.hpp"
#include "support/temp_dir.hpp"

namespace aether::test {

using SteadyClock = std::chrono::steady_clock;

inline double seconds_since(SteadyClock::time_point t) {
  return std::chrono::duration<double>(SteadyClock::now() - t).count();
}

// kThreads clients, each sending Increment {"by":1} to its own slice of the
// actors c-0..c-(actors-1) in turn, over NATS request/reply (the queue group
// spreads them over the hosts).
class ClusterLoad {
 public:
  static constexpr int kThreads = 16;

  struct Sample {
    double sent_at;  // seconds since the load started
    double latency;  // seconds until the reply (or the error)
    bool ok;
  };

  ClusterLoad(const std::string& url, int actors, bool keep_samples = false)
      : actors_(actors), keep_samples_(keep_samples), acked_(static_cast<size_t>(actors), 0),
        unknown_(static_cast<size_t>(actors), 0), samples_(static_cast<size_t>(actors)) {
    natsConnection_ConnectTo(&nc_, url.c_str());
  }
  ~ClusterLoad() {
    stop();
    natsConnection_Destroy(nc_);
  }

  void start() {
    t0_ = SteadyClock::now();
    for (int t = 0; t < kThreads; ++t) threads_.emplace_back([this, t] { run(t); });
  }
  void stop() {
    stop_.store(true);
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

  // Waits (bounded) until every thread has sent to each of its actors once.
  bool wait_warm(int timeout_seconds = 90) {
    const auto deadline = SteadyClock::now() + std::chrono::seconds(timeout_seconds);
    while (SteadyClock::now() < deadline) {
      bool all = true;
      for (int t = 0; t < kThreads; ++t) all = all && rounds_[t].load() > 0;
      if (all) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  double elapsed() const { return seconds_since(t0_); }
  uint64_t sent() const { return sent_.load(); }
  int acked(int actor) const { return acked_[static_cast<size_t>(actor)]; }
  int unknown(int actor) const { return unknown_[static_cast<size_t>(actor)]; }
  // Per actor, every command's send time and latency (keep_samples only;
  // read after stop()).
  const std::vector<std::vector<Sample>>& samples() const { return samples_; }
  std::vector<std::pair<double, std::string>> errors() {
    std::lock_guard lock(mu_);
    return errors_;
  }

 private:
  void run(int t) {
    const std::string body = R"({"command":"Increment","payload":{"by":1}})";
    for (int round = 0; !stop_.load() && round < 10000000; ++round) {
      for (int a = t; a < actors_ && !stop_.load(); a += kThreads) {
        const std::string subject = "aether.default.cmd.Counter.c-" + std::to_string(a);
        natsMsg* reply = nullptr;
        sent_.fetch_add(1);
        const double sent_at = elapsed();
        natsStatus s = natsConnection_Request(&reply, nc_, subject.c_str(), body.data(),
                                              static_cast<int>(body.size()), 10000);
        const double latency = elapsed() - sent_at;
        std::string error;
        if (s != NATS_OK) {
          error = std::string("transport: ") + natsStatus_GetText(s);
        } else {
          const char* st = nullptr;
          const int status = natsMsgHeader_Get(reply, "Aether-Status", &st) == NATS_OK && st ? std::atoi(st) : 0;
          if (status == 200) {
            ++acked_[static_cast<size_t>(a)];
          } else {
            error = "status " + std::to_string(status) + ": " +
                    std::string(natsMsg_GetData(reply), static_cast<size_t>(natsMsg_GetDataLength(reply)));
          }
          natsMsg_Destroy(reply);
        }
        if (keep_samples_) samples_[static_cast<size_t>(a)].push_back({sent_at, latency, error.empty()});
        if (!error.empty()) {
          ++unknown_[static_cast<size_t>(a)];
          std::lock_guard lock(mu_);
          errors_.push_back({sent_at, "c-" + std::to_string(a) + ": " + error});
        }
      }
      rounds_[t].fetch_add(1);
    }
  }

  natsConnection* nc_ = nullptr;
  const int actors_;
  const bool keep_samples_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> sent_{0};
  std::atomic<int> rounds_[kThreads] = {};
  std::vector<int> acked_;    // each actor is written by one thread only
  std::vector<int> unknown_;  // failed or unanswered: may or may not have been stored
  std::vector<std::vector<Sample>> samples_;
  std::mutex mu_;
  std::vector<std::pair<double, std::string>> errors_;
  SteadyClock::time_point t0_ = SteadyClock::now();
};

// A 3-server NATS cluster and aether-host nodes on it.
class ClusterHarness {
 public:
  ClusterHarness(int64_t node_ttl_ms = 3000, std::string heartbeat = "500ms")
      : node_ttl_ms_(node_ttl_ms), heartbeat_(std::move(heartbeat)) {}

  bool nats_ready() { return nats_.wait_ready(60, &nats_why_); }
  // What was not ready when nats_ready() failed.
  const std::string& nats_why() const { return nats_why_; }
  // Environment for the nodes started from now on (config/cluster.yaml reads it).
  void set_env(const std::string& key, const std::string& value) { extra_env_[key] = value; }
  // The configuration of the nodes started from now on (default: config/cluster.yaml).
  void set_config(const std::string& file) { config_ = file; }
  NatsServer& nats(size_t i) { return nats_.server(i); }
  int64_t node_ttl_ms() const { return node_ttl_ms_; }

  // Starts a node on the next NATS server in turn; nullptr (and `why`) if it
  // did not come up.
  HostProcess* start_host(const std::string& node, std::string* why = nullptr) {
    const size_t server = started_++ % nats_.size();
    std::map<std::string, std::string> env = {{"NATS_URL", nats_.server(server).url()},
                                              {"AETHER_LISTEN", "127.0.0.1:0"},
                                              {"AETHER_PLUGIN_DIR", AETHER_PLUGIN_DIR},
                                              {"AETHER_NODE_ID", node},
                                              {"AETHER_NODE_TTL", std::to_string(node_ttl_ms_) + "ms"},
                                              {"AETHER_HEARTBEAT", heartbeat_},
                                              {"AETHER_LOG_LEVEL", "info"}};
    for (const auto& [k, v] : extra_env_) env[k] = v;
    hosts_[node] = std::make_unique<HostProcess>(std::vector<std::string>{"--config", config_}, env,
                                                  dir_.file(node + ".log"));
    HostProcess* h = hosts_[node].get();
    if (!h->start()) {
      if (why) *why = h->log() + "\nthe NATS servers:\n" + nats_.state();
      return nullptr;
    }
    return h;
  }

  // Starts node-1..node-<n> and waits (bounded) for a converged map; false
  // (and `why`) if one did not come up or the map did not converge.
  bool start_nodes(int n, std::string* why) {
    for (int i = 1; i <= n; ++i) {
      if (start_host("node-" + std::to_string(i), why) == nullptr) return false;
    }
    if (wait_converged(static_cast<size_t>(n), 60)) return true;
    *why = "the map did not converge: " + last_status_.dump(1) + "\nthe NATS servers:\n" + nats_.state();
    return false;
  }

  // Takes a node out: SIGTERM (graceful; returns its exit code) or SIGKILL.
  int stop_host(const std::string& id, bool kill, std::string* log = nullptr) {
    auto h = std::move(hosts_.at(id));
    hosts_.erase(id);
    int code = 0;
    if (kill) h->kill_now();
    else code = h->stop(90);
    if (log) *log = h->log();
    gone_.push_back(std::move(h));
    return code;
  }

  HostProcess& host(const std::string& id) { return *hosts_.at(id); }

  // For a failed check: each node's state and the last `lines` lines of its
  // log, then the NATS servers' state.
  std::string hosts_state(size_t lines = 25) {
    std::string out;
    for (const auto& [id, h] : hosts_) {
      const std::string log = h->log();
      size_t from = log.size();
      for (size_t n = 0; n <= lines && from > 0;) {
        if (log[--from] == '\n') ++n;
      }
      out += id + ": " + h->state() + "; its log ends:\n" + log.substr(from == 0 ? 0 : from + 1) + "\n";
    }
    return out + "the NATS servers:\n" + nats_.state();
  }

  std::vector<std::string> running() const {
    std::vector<std::string> out;
    for (const auto& [id, _] : hosts_) out.push_back(id);
    return out;
  }

  // A running node other than `besides`.
  std::string any_live(const std::string& besides = "") const {
    for (const auto& [id, h] : hosts_) {
      if (id != besides) return id;
    }
    return "";
  }

  nlohmann::json status(const std::string& via) {
    auto it = hosts_.find(via);
    if (it == hosts_.end()) return {};
    httplib::Client c("127.0.0.1", it->second->port());
    c.set_read_timeout(5, 0);
    auto r = c.Get("/v1/cluster");
    if (!r || r->status != 200) return {};
    return nlohmann::json::parse(r->body, nullptr, false);
  }

  // Every running node reports the same epoch, `nodes` members each holding
  // shards, every shard owned, and no migration in flight.
  bool converged(size_t nodes) {
    uint64_t epoch = 0;
    for (const auto& [id, h] : hosts_) {
      nlohmann::json s = status(id);
      last_status_ = s;
      if (!s.is_object() || s["nodes"].size() != nodes || s["unowned_shards"] != 0 || !s["migrations"].empty()) {
        return false;
      }
      uint32_t owned = 0;
      for (const auto& n : s["nodes"]) {
        if (n["shards"].get<uint32_t>() == 0) return false;
        owned += n["shards"].get<uint32_t>();
      }
      if (owned != s["shards"].get<uint32_t>()) return false;
      if (epoch != 0 && s["epoch"] != epoch) return false;
      epoch = s["epoch"];
    }
    return true;
  }

  bool wait_converged(size_t nodes, int timeout_seconds) {
    const auto deadline = SteadyClock::now() + std::chrono::seconds(timeout_seconds);
    while (SteadyClock::now() < deadline) {
      if (converged(nodes)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  const nlohmann::json& last_status() const { return last_status_; }

 private:
  const int64_t node_ttl_ms_;
  const std::string heartbeat_;
  TempDir dir_;
  NatsCluster nats_{3};
  size_t started_ = 0;
  std::map<std::string, std::unique_ptr<HostProcess>> hosts_;
  std::vector<std::unique_ptr<HostProcess>> gone_;
  std::map<std::string, std::string> extra_env_;
  std::string config_ = std::string(AETHER_SOURCE_DIR) + "/config/cluster.yaml";
  nlohmann::json last_status_;
  std::string nats_why_;
};

}  // namespace aether::test
