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
  explicit NatsCluster(int size, bool monitor = false) {
    std::vector<int> route_ports;
    for (int i = 0; i < size; ++i) route_ports.push_back(free_port());
    for (int i = 0; i < size && monitor; ++i) monitor_ports_.push_back(free_port());
    std::string routes;
    for (int p : route_ports) routes += (routes.empty() ? "" : ", ") + std::string("nats://127.0.0.1:") + std::to_string(p);
    for (int i = 0; i < size; ++i) {
      const std::string conf = "server_name: s" + std::to_string(i + 1) + "\n" +
                               "cluster {\n  name: aether-test\n  listen: 127.0.0.1:" +
                               std::to_string(route_ports[static_cast<size_t>(i)]) + "\n  routes: [" + routes +
                               "]\n}\n" +
                               (monitor ? "http: 127.0.0.1:" + std::to_string(monitor_ports_[static_cast<size_t>(i)]) + "\n"
                                        : std::string());
      servers_.push_back(std::make_unique<NatsServer>(conf));
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
    return true;
  }

 private:
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
