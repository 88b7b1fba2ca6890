// Command ingress over NATS request/reply: aether.<ns>.cmd.<type>.<id>, the
// same JSON in and out as POST /v1/{ns}/actors/{type}/{id}/commands, in the
// queue group "aether.<ns>" so several hosts share the load. The reply
// carries the HTTP status in the header "Aether-Status".
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/json_limits.hpp"
#include "core/status.hpp"

namespace aether {

class NatsConnection;
class Runtime;
class ClusterNode;
struct Command;
struct ApiReply;

// The command a message on `subject` carries: aether.<ns>.cmd.<type>.<id>
// (or, forwarded, aether._cluster.fwd.<node>.<ns>.<type>.<id>) with the JSON
// `body` and the Idempotency-Key header. False with `error` (a 400 reply)
// when it is not a command request.
bool parse_ingress_message(const std::string& subject, const std::string& body,
                           const std::string& idempotency_key, Command& out, ApiReply& error,
                           size_t max_json_depth = kDefaultMaxJsonDepth);

class NatsIngress {
 public:
  // REQUIRES: connection and runtime outlive the ingress.
  // With a cluster, commands go through it, and the ingress also serves the
  // commands other nodes forward to this one (ClusterNode::forward_subject).
  // `max_json_depth`: api.max_json_depth, checked on every message body.
  // A message that makes the handler fail unexpectedly is answered 500
  // `internal` (and logged); the host goes on.
  static Result<std::unique_ptr<NatsIngress>> start(NatsConnection& connection, Runtime& runtime,
                                                    const std::vector<std::string>& namespaces,
                                                    ClusterNode* cluster = nullptr,
                                                    const std::string& node_id = {},
                                                    size_t max_json_depth = kDefaultMaxJsonDepth);
  ~NatsIngress();
  // Unsubscribes; requests already taken are answered. Idempotent.
  void stop();

 private:
  struct Impl;
  explicit NatsIngress(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace aether
