// The HTTP/JSON API (cpp-httplib). Routes, as in DESIGN.md:
//   POST /v1/{ns}/actors/{type}/{id}/commands   send a command
//   GET  /v1/{ns}/actors/{type}/{id}            state view and version
//   GET  /v1/{ns}/actors/{type}/{id}/events     events (?from=N&limit=M)
//   GET  /v1/plugins                            loaded plugins and models
//   POST /v1/plugins/{name}/reload              hot swap ({"file"} or {"to":"previous"})
//   GET  /v1/cluster                            membership (single node here)
//   GET  /metrics /healthz /readyz
// Every error is JSON {"error":{"code":...,"message":...}} (docs/api.md).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "core/status.hpp"

namespace aether {

class Metrics;
class PluginManager;
class PluginRegistry;
class Runtime;
class ClusterNode;

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0 = any free port (see HttpServer::port())
  uint64_t max_body_bytes = 1 << 20;
  std::string bearer_token;  // empty = no authentication
  uint32_t threads = 8;
  std::string node_id = "node-1";
  size_t max_json_depth = 64;  // api.max_json_depth: request bodies nest at most this deep
};

class HttpServer {
 public:
  // Binds and starts serving on background threads. Fails, naming the
  // address, if it cannot bind.
  // REQUIRES: runtime, registry and metrics outlive the server.
  // `plugins` may be null: reload then answers 501.
  // `cluster` may be null (a single node): commands then run on `runtime`.
  static Result<std::unique_ptr<HttpServer>> start(const HttpOptions& options, Runtime& runtime,
                                                   PluginRegistry& registry, Metrics& metrics,
                                                   PluginManager* plugins = nullptr,
                                                   ClusterNode* cluster = nullptr);
  ~HttpServer();

  // The bound port (the chosen one when options.port was 0).
  int port() const;
  // /readyz answers 503 once this is false.
  void set_ready(bool ready);
  // Stops accepting and waits for requests in progress. Idempotent.
  void stop();

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace aether
