// Internal to the api module: the connections of the HTTP server and what
// they share (options, routes, counts). Only http_server.cpp and
// http_connection.cpp include this (it pulls in Asio).
#pragma once

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "api/http_routes.hpp"
#include "api/http_server.hpp"

namespace aether {
class EventStreams;
}

namespace aether::http_detail {

class Connection;

class ConnectionHub {
 public:
  ConnectionHub(const HttpOptions& options, ApiRoutes& routes) : options_(options), routes_(routes) {}

  const HttpOptions& options() const { return options_; }
  ApiRoutes& routes() { return routes_; }
  // The event streams (GET /v1/{ns}/events/stream); set before serving.
  EventStreams* streams() { return streams_; }
  void set_streams(EventStreams* streams) { streams_ = streams; }

  // Counts a new connection in; false when max_connections are open.
  bool admit();
  // Registers an admitted connection; returns its id for remove().
  uint64_t add(const std::shared_ptr<Connection>& connection);
  // Forgets a connection (closed) and frees its admission.
  void remove(uint64_t id);
  size_t open() const;

  // Requests read in full whose replies are not written yet. A request
  // starts only while the hub is not stopping (false then): the check and
  // the count are one step, so wait_requests() cannot miss a request that
  // started as stop_all() began.
  bool request_started();
  void request_finished();
  // Waits (bounded) until no request is in progress; false on timeout.
  bool wait_requests(int64_t timeout_ms);

  // Refuses new requests: idle connections close, busy ones after their reply.
  void stop_all();
  bool stopping() const { return stopping_.load(); }

 private:
  const HttpOptions& options_;
  ApiRoutes& routes_;
  EventStreams* streams_ = nullptr;
  mutable std::mutex mu_;
  std::condition_variable idle_;
  std::unordered_map<uint64_t, std::weak_ptr<Connection>> connections_;
  uint64_t next_id_ = 1;
  size_t admitted_ = 0;
  size_t in_flight_ = 0;
  std::atomic<bool> stopping_{false};
};

// Serves one admitted socket (its executor a strand) until it closes.
void serve(boost::asio::ip::tcp::socket socket, ConnectionHub& hub);
// Turns an admitted connection (its id from add()) into an event stream of
// namespace `ns` for `request` (docs/api.md); the stream removes the id.
void serve_event_stream(boost::asio::ip::tcp::socket socket, ConnectionHub& hub, uint64_t connection,
                        const ApiRequest& request, const std::string& ns, const std::string& origin);
// Answers 503 and closes at once: max_connections are open.
void refuse(boost::asio::ip::tcp::socket socket, uint32_t max_connections);

}  // namespace aether::http_detail
