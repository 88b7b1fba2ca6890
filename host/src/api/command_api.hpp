// The command request and reply shared by the HTTP API and the NATS ingress:
// the same JSON in, the same JSON and status out, whichever way it came.
//
// Request:  {"command": "Deposit", "payload": {...}, "expected_version": N,
//            "idempotency_key": "..."}
// Reply:    200 {"ns","type","id","version","duplicate","events":[...]}
//           or an error {"error":{"code","message",...}} with its HTTP status.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "cluster/route_trail.hpp"
#include "core/json_limits.hpp"
#include "runtime/runtime.hpp"

namespace aether {

class ClusterNode;

struct ApiReply {
  int status = 200;
  std::string body;             // JSON
  uint64_t redirect_epoch = 0;  // > 0: a forwarded command sent back, not run (route_trail.hpp)
};

// Parses a command request body for actor (ns, type, id). On success fills
// `out` and returns true; else fills `error` (a 400 reply) and returns false.
// `idempotency_header` is used when the body has no idempotency_key. The body
// must be valid UTF-8 and nest at most `max_depth` levels (api.max_json_depth;
// the body's own object is the first level); both are checked before it is
// parsed.
bool parse_command_request(const std::string& ns, const std::string& type, const std::string& id,
                           const std::string& body, const std::string& idempotency_header,
                           Command& out, ApiReply& error, size_t max_depth = kDefaultMaxJsonDepth);

// A 400 reply when JSON `text` from a client (`what`: "request body") is not
// valid UTF-8 or nests deeper than `max_depth` (api.max_json_depth); nothing
// when it may be parsed.
std::optional<ApiReply> json_input_error(std::string_view text, size_t max_depth, std::string_view what);

// The reply for a command's result.
ApiReply command_reply(const std::string& ns, const std::string& type, const std::string& id,
                       const CommandResult& result);

// An error reply {"error":{"code","message"}} for a status.
ApiReply error_reply(const Status& status);

// Runs a parsed command and calls `done` with its reply exactly once: through
// the cluster (which runs it here or forwards it to the owner of its shard)
// when `cluster` is set, else on the runtime. `trail`: what the node that
// forwarded the command said (empty for a client's command).
void dispatch_command(Runtime& runtime, ClusterNode* cluster, Command command, RouteTrail trail,
                      std::function<void(ApiReply)> done);
ApiReply dispatch_command_sync(Runtime& runtime, ClusterNode* cluster, Command command);

// The HTTP status for a status code (400, 404, 409, 422, 503, 500...).
int http_status(StatusCode code);

}  // namespace aether
