// Test support: a cluster of real nats-servers with JetStream on loopback,
// routes between them, each with its own temporary store.
#pragma once

#include <nats/nats.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/nats_server.hpp"

namespace aether::test {

class NatsCluster {
 public:
  // `monitor`: each server also serves HTTP monitoring (/jsz) on a port of
  // its own; off by default (a port more per server that another test
  // running at the same time could take first).
  // Ports free_port() found can be taken by another test running at the
  // same time before a server binds them: then the whole cluster starts
  // again on other ports (a few times).
  explicit NatsCluster(int size, bool monitor = false) { start_fresh(size, monitor); }

  NatsServer& server(size_t i) { return *servers_[i]; }
  // The server's HTTP monitoring port (/varz, /jsz: the meta group's
  // leader); 0 without `monitor`.
  int monitor_port(size_t i) const { return i < monitor_ports_.size() ? monitor_ports_[i] : 0; }
  size_t size() const { return servers_.size(); }

  // Waits (bounded) until JetStream answers through every server and a
  // stream of `size` replicas can be placed. nats-server 2.10 sometimes
  // forms a new cluster's JetStream meta group without one of the servers
  // (its peers.idx lists two peers of three, on every server, although all
  // routes are up), and then never places such a stream ("no suitable peers
  // for placement"): the cluster then starts afresh, on other ports, a few
  // times. `why` (if given) says what was not ready.
  bool wait_ready(int timeout_seconds = 60, std::string* why = nullptr) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
    std::string not_ready;
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (attempt > 0) {
        std::fprintf(stderr, "NatsCluster: %s; starting the cluster afresh\n", not_ready.substr(0, 300).c_str());
        start_fresh(static_cast<int>(servers_.size()), monitor_);
      }
      if (ready_once(deadline, &not_ready)) return true;
      if (std::chrono::steady_clock::now() > deadline) break;
    }
    if (why != nullptr) *why = not_ready;
    return false;
  }

  // Each server: running or not, and (if not) the end of its log.
  std::string state() {
    std::string out;
    for (size_t i = 0; i < servers_.size(); ++i) {
      out += "s" + std::to_string(i + 1) + " (" + servers_[i]->url() + "): ";
      if (servers_[i]->alive()) {
        out += "running\n";
        continue;
      }
      const std::string log = servers_[i]->log();
      out += "not running; the end of its log:\n" + log.substr(log.size() > 2000 ? log.size() - 2000 : 0) + "\n";
    }
    return out;
  }

 private:
  // One try of wait_ready on the servers as they are: JetStream answers
  // through each, then a stream of size() replicas is placed (and deleted)
  // within 20 s.
  bool ready_once(std::chrono::steady_clock::time_point deadline, std::string* why) {
    for (size_t i = 0; i < servers_.size(); ++i) {
      if (!servers_[i]->up()) {
        *why = "s" + std::to_string(i + 1) + " did not start; its log:\n" + servers_[i]->log();
        return false;
      }
      for (;;) {
        if (std::chrono::steady_clock::now() > deadline) {
          *why = "JetStream did not answer through s" + std::to_string(i + 1) + "; its log:\n" + servers_[i]->log();
          return false;
        }
        if (js_ready(servers_[i]->url())) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    }
    const auto placed_by = std::min(deadline, std::chrono::steady_clock::now() + std::chrono::seconds(20));
    std::string placement;
    while (!place_probe(servers_[0]->url(), static_cast<int>(servers_.size()), &placement)) {
      if (std::chrono::steady_clock::now() > placed_by) {
        *why = "no stream of " + std::to_string(servers_.size()) + " replicas could be placed: " + placement;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    for (size_t i = 0; i < servers_.size(); ++i) {
      if (servers_[i]->alive()) continue;
      *why = "s" + std::to_string(i + 1) + " exited; its log:\n" + servers_[i]->log();
      return false;
    }
    return true;
  }

  // Creates and deletes a memory stream of `replicas` replicas; false (and
  // the error in `error`) if it could not be created.
  static bool place_probe(const std::string& url, int replicas, std::string* error) {
    *error = "no connection to " + url;
    return with_js(url, [&](jsCtx* js) {
      jsStreamConfig cfg;
      jsStreamConfig_Init(&cfg);
      cfg.Name = "TEST_READY_PROBE";
      const char* subjects[] = {"_test.ready.probe"};
      cfg.Subjects = subjects;
      cfg.SubjectsLen = 1;
      cfg.Replicas = replicas;
      cfg.Storage = js_MemoryStorage;
      jsErrCode err = static_cast<jsErrCode>(0);
      if (js_AddStream(nullptr, js, &cfg, nullptr, &err) != NATS_OK) {
        const char* last = nats_GetLastError(nullptr);
        *error = "error code " + std::to_string(static_cast<int>(err)) + ": " + (last != nullptr ? last : "");
        return false;
      }
      js_DeleteStream(js, cfg.Name, nullptr, nullptr);
      return true;
    });
  }

  // start_all, on other ports each time, until every server came up (4
  // tries at most).
  void start_fresh(int size, bool monitor) {
    int tries = 0;
    while (!start_all(size, monitor) && ++tries < 4) {
    }
  }

  // Starts `size` servers routed to each other; false if one did not come up.
  bool start_all(int size, bool monitor) {
    monitor_ = monitor;
    servers_.clear();
    monitor_ports_.clear();
    std::vector<int> route_ports;
    for (int i = 0; i < size; ++i) route_ports.push_back(free_port());
    for (int i = 0; i < size && monitor; ++i) monitor_ports_.push_back(free_port());
    std::string routes;
    for (int p : route_ports) routes += (routes.empty() ? "" : ", ") + std::string("nats://127.0.0.1:") + std::to_string(p);
    bool all_up = true;
    for (int i = 0; i < size; ++i) {
      const std::string conf = "server_name: s" + std::to_string(i + 1) + "\n" +
                               "cluster {\n  name: aether-test\n  listen: 127.0.0.1:" +
                               std::to_string(route_ports[static_cast<size_t>(i)]) + "\n  routes: [" + routes +
                               "]\n}\n" +
                               (monitor ? "http: 127.0.0.1:" + std::to_string(monitor_ports_[static_cast<size_t>(i)]) + "\n"
                                        : std::string());
      servers_.push_back(std::make_unique<NatsServer>(conf));
      all_up = all_up && servers_.back()->up();
    }
    return all_up;
  }

  // f(js) on a new connection to `url`; false if there was none.
  template <typename F>
  static bool with_js(const std::string& url, F f) {
    natsConnection* nc = nullptr;
    if (natsConnection_ConnectTo(&nc, url.c_str()) != NATS_OK) return false;
    jsCtx* js = nullptr;
    bool ok = false;
    if (natsConnection_JetStream(&js, nc, nullptr) == NATS_OK) {
      ok = f(js);
      jsCtx_Destroy(js);
    }
    natsConnection_Destroy(nc);
    return ok;
  }

  static bool js_ready(const std::string& url) {
    return with_js(url, [](jsCtx* js) {
      jsAccountInfo* ai = nullptr;
      jsErrCode err = static_cast<jsErrCode>(0);
      const bool ok = js_GetAccountInfo(&ai, js, nullptr, &err) == NATS_OK;
      jsAccountInfo_Destroy(ai);
      return ok;
    });
  }

  bool monitor_ = false;
  std::vector<int> monitor_ports_;
  std::vector<std::unique_ptr<NatsServer>> servers_;
};

}  // namespace aether::test
