// Test support: a cluster of real nats-servers with JetStream on loopback,
// routes between them, each with its own temporary store.
#pragma once

#include <nats/nats.h>

#include <memory>
#include <string>
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
  explicit NatsCluster(int size, bool monitor = false) {
    for (int attempt = 0; attempt < 4 && !start_all(size, monitor); ++attempt) {
    }
  }

  NatsServer& server(size_t i) { return *servers_[i]; }
  // The server's HTTP monitoring port (/varz, /jsz: the meta group's
  // leader); 0 without `monitor`.
  int monitor_port(size_t i) const { return i < monitor_ports_.size() ? monitor_ports_[i] : 0; }
  size_t size() const { return servers_.size(); }

  // Waits (bounded) until JetStream answers through every server: the meta
  // leader is elected and the servers see each other.
  // `why` (if given) says what was not ready.
  bool wait_ready(int timeout_seconds = 60, std::string* why = nullptr) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
    for (size_t i = 0; i < servers_.size(); ++i) {
      if (!servers_[i]->up()) {
        if (why != nullptr) *why = "s" + std::to_string(i + 1) + " did not start; its log:\n" + servers_[i]->log();
        return false;
      }
      for (;;) {
        if (std::chrono::steady_clock::now() > deadline) {
          if (why != nullptr) *why = "JetStream did not answer through s" + std::to_string(i + 1) + "; its log:\n" +
                                     servers_[i]->log();
          return false;
        }
        if (js_ready(servers_[i]->url())) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    }
    for (size_t i = 0; i < servers_.size(); ++i) {
      if (servers_[i]->alive()) continue;
      if (why != nullptr) *why = "s" + std::to_string(i + 1) + " exited; its log:\n" + servers_[i]->log();
      return false;
    }
    return true;
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
  // Starts `size` servers routed to each other; false if one did not come up.
  bool start_all(int size, bool monitor) {
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


  static bool js_ready(const std::string& url) {
    natsConnection* nc = nullptr;
    if (natsConnection_ConnectTo(&nc, url.c_str()) != NATS_OK) return false;
    jsCtx* js = nullptr;
    bool ok = false;
    if (natsConnection_JetStream(&js, nc, nullptr) == NATS_OK) {
      jsAccountInfo* ai = nullptr;
      jsErrCode err = static_cast<jsErrCode>(0);
      ok = js_GetAccountInfo(&ai, js, nullptr, &err) == NATS_OK;
      jsAccountInfo_Destroy(ai);
      jsCtx_Destroy(js);
    }
    natsConnection_Destroy(nc);
    return ok;
  }

  std::vector<int> monitor_ports_;
  std::vector<std::unique_ptr<NatsServer>> servers_;
};

}  // namespace aether::test
