// The HTTP/JSON API: an event-driven server (Boost.Beast on Asio) with a few
// I/O threads. Routes, as in DESIGN.md:
//   POST /v1/{ns}/actors/{type}/{id}/commands   send a command
//   GET  /v1/{ns}/actors/{type}/{id}            state view and version
//   GET  /v1/{ns}/actors/{type}/{id}/events     events (?from=N&limit=M)
//   GET  /v1/plugins                            loaded plugins and models
//   POST /v1/plugins/{name}/reload              hot swap ({"file"} or {"to":"previous"})
//   GET  /v1/cluster                            membership (single node here)
//   GET  /metrics /healthz /readyz
// Every error is JSON {"error":{"code":...,"message":...}} (docs/api.md).
// A command never holds a thread while it waits for its commit: its reply is
// written when the runtime completes it. Every input is bounded while it is
// read (header size and count, body size, chunked too) and every phase of a
// connection has a deadline (docs/configuration.md, api.http).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.hpp"

namespace aether {

class Bus;
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
  uint32_t threads = 0;      // I/O threads; 0 = from the number of cores
  std::string node_id = "node-1";
  // Limits, each enforced while reading.
  int64_t header_timeout_ms = 10000;   // first byte of a request -> its last header
  int64_t idle_timeout_ms = 60000;     // keep-alive wait for the next request
  int64_t request_timeout_ms = 60000;  // first byte -> whole body read; also each reply's write
  uint32_t max_connections = 1024;     // more are refused at once (503, closed)
  uint64_t max_header_bytes = 16 << 10;  // request line and headers -> else 431
  uint32_t max_header_count = 100;       // header fields -> else 431
  uint32_t max_uri_bytes = 8192;         // request target -> else 414
  // Origins (scheme://host[:port]) whose cross-origin requests are served;
  // a request with any other Origin gets 403.
  std::vector<std::string> allowed_origins;
  size_t max_json_depth = 64;  // api.max_json_depth: request bodies nest at most this deep
  // GET /v1/{ns}/events/stream: streams open at once, frames buffered per client.
  uint32_t max_event_streams = 64;
  uint32_t event_stream_queue = 1024;
};

class HttpServer {
 public:
  // Binds and starts serving on background threads. Fails, naming the
  // address, if it cannot bind (the port is never shared: no SO_REUSEPORT).
  // REQUIRES: runtime, registry and metrics outlive the server.
  // `plugins` may be null: reload then answers 501.
  // `cluster` may be null (a single node): commands then run on `runtime`.
  // `events` feeds the event streams (null: they answer 501).
  static Result<std::unique_ptr<HttpServer>> start(const HttpOptions& options, Runtime& runtime,
                                                   PluginRegistry& registry, Metrics& metrics,
                                                   PluginManager* plugins = nullptr,
                                                   ClusterNode* cluster = nullptr, Bus* events = nullptr);
  ~HttpServer();

  // The bound port (the chosen one when options.port was 0).
  int port() const;
  // /readyz answers 503 once this is false.
  void set_ready(bool ready);
  // Stops accepting, closes idle connections and waits for requests in
  // progress (their replies are written). Idempotent.
  void stop();

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace aether
