// The HTTP API's routes, independent of the transport: a parsed request in,
// an ApiReply out (possibly later, from another thread). Each route's body is
// a function returning ApiReply so that any server can call it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "api/command_api.hpp"

namespace aether {

class Metrics;
class PluginManager;
class PluginRegistry;

struct ApiRequest {
  std::string method;  // "GET", "POST", "HEAD", ...
  std::string path;    // percent-decoded, without the query
  std::vector<std::pair<std::string, std::string>> query;  // decoded
  std::string body;
  std::string idempotency_key;  // the Idempotency-Key header
};

// A reply and its content type.
struct ApiResponse {
  ApiResponse() = default;
  ApiResponse(ApiReply r, std::string type = "application/json", std::string methods = {})  // NOLINT
      : reply(std::move(r)), content_type(std::move(type)), allow(std::move(methods)) {}
  ApiReply reply;
  std::string content_type = "application/json";
  std::string allow;  // for 405: the methods the path takes
};

// Route bodies.
ApiReply state_reply(Runtime& runtime, ClusterNode* cluster, const std::string& ns,
                     const std::string& type, const std::string& id);
ApiReply events_reply(Runtime& runtime, const std::string& ns, const std::string& type,
                      const std::string& id, const ApiRequest& request);
// Plugin routes (api/plugin_routes.cpp). `namespaces`: those the host serves.
ApiReply plugins_reply(PluginRegistry& registry, const std::vector<std::string>& namespaces);
ApiReply reload_reply(PluginManager* manager, const std::string& plugin, const std::string& body,
                      size_t max_json_depth);
ApiReply promote_reply(PluginManager* manager, const std::string& plugin, const std::string& body,
                       size_t max_json_depth);
ApiReply cluster_reply(ClusterNode* cluster, const std::string& node_id);
ApiReply http_error_reply(int status, const std::string& code, const std::string& message);

// The web console (GET /ui, /ui/<file>) and the event stream's path.
bool is_console_path(const std::string& path);
ApiResponse console_reply(const std::string& path);
// The namespace of GET /v1/{ns}/events/stream, or nullopt for another path.
std::optional<std::string> event_stream_namespace(const std::string& path);

// The command route, POST /v1/{ns}/actors/{type}/{id}/commands, matched
// without a regex (it is matched on every command) exactly as the route
// table's pattern /v1/([^/]+)/actors/([^/]+)/(.*)/commands matches it: ns and
// type are one segment each, id is all between them and the final
// "/commands" (it may hold '/', not CR or LF). On a match `m` is
// {path, ns, type, id}.
bool match_command_path(const std::string& path, std::vector<std::string>& m);

// Percent-decodes `s` ('+' becomes a space when `plus_is_space`); a broken
// escape is kept as it is.
std::string url_decode(const std::string& s, bool plus_is_space);
// Splits a target "path?query" into its decoded path and query parameters.
void split_target(const std::string& target, std::string& path,
                  std::vector<std::pair<std::string, std::string>>& query);

class ApiRoutes {
 public:
  using Done = std::function<void(ApiResponse)>;
  // Runs a task off the I/O threads (a store read, a hot swap).
  using Blocking = std::function<void(std::function<void()>)>;

  struct Deps {
    Runtime& runtime;
    PluginRegistry& registry;
    Metrics& metrics;
    PluginManager* manager = nullptr;
    ClusterNode* cluster = nullptr;
    std::string node_id;
    Blocking run_blocking;
    const std::atomic<bool>* ready = nullptr;
    size_t max_json_depth = 64;  // api.max_json_depth
  };

  explicit ApiRoutes(Deps deps) : d_(std::move(deps)) {}

  // Answers `request` by calling `done` exactly once, on this thread (quick
  // routes), on the blocking pool (state, events, reload) or on the thread
  // that completes a command. Never throws: a failure is a 500 `internal`.
  void handle(ApiRequest request, Done done);
  // The methods some route takes for `path` ("" if none), e.g. "GET, HEAD".
  std::string methods_for(const std::string& path) const;

 private:
  void command(ApiRequest& request, const std::vector<std::string>& m, Done& done);
  ApiResponse quick(const std::string& route, const ApiRequest& request,
                    const std::vector<std::string>& m);
  Deps d_;
};

}  // namespace aether
