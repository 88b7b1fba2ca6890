#include "app/options.hpp"

#include "plugin/plugin.hpp"

namespace aether {

RuntimeOptions runtime_options(const HostConfig& c) {
  RuntimeOptions o;
  o.namespaces = c.node.namespaces;
  o.node_id = c.node.id;
  o.workers = c.actors.workers;
  o.io_threads = c.actors.io_threads;
  o.max_active_actors = c.actors.max_active;
  o.idle_timeout_ms = c.actors.idle_timeout_ms;
  o.mailbox_capacity = c.actors.mailbox_size;
  o.conflict_retries = c.actors.conflict_retries;
  o.call_timeout_ms = c.actors.call_timeout_ms;
  o.max_stuck_calls = c.actors.max_stuck_calls;
  o.snapshot = {c.actors.snapshot.every, c.actors.snapshot.keep};
  o.idempotency = {c.actors.idempotency.retention_keys, c.actors.idempotency.retention_age_ms};
  for (const auto& [name, t] : c.actors.types) {
    ActorTypeOptions to;
    if (t.snapshot) to.snapshot = SnapshotPolicy{t.snapshot->every, t.snapshot->keep};
    to.idle_timeout_ms = t.idle_timeout_ms;
    to.mailbox_capacity = t.mailbox_size;
    to.call_timeout_ms = t.call_timeout_ms;
    o.types[name] = to;
  }
  return o;
}

ClusterOptions cluster_options(const HostConfig& c, const PluginRegistry& registry) {
  ClusterOptions o;
  o.node_id = c.node.id;
  o.bucket_prefix = c.cluster.bucket_prefix;
  o.shards = c.cluster.shards;
  o.vnodes = c.cluster.vnodes;
  o.node_ttl_ms = c.cluster.node_ttl_ms;
  o.heartbeat_ms = c.cluster.heartbeat_ms;
  o.failover_after_ms = c.cluster.failover_after_ms;
  o.max_moves = c.cluster.max_moves;
  o.handoff_timeout_ms = c.cluster.handoff_timeout_ms;
  o.route_wait_ms = c.cluster.route_wait_ms;
  o.forward_timeout_ms = c.cluster.forward_timeout_ms;
  o.replicas = static_cast<int>(c.cluster.replicas);
  for (const auto& p : registry.plugins()) o.plugins.push_back(p->name() + "@" + p->version());
  return o;
}

NatsOptions nats_options(const HostConfig& c) {
  NatsOptions o;
  o.servers = c.nats.servers;
  o.name = c.nats.name + " " + c.node.id;
  o.user = c.nats.user;
  o.password = c.nats.password;
  o.token = c.nats.token;
  o.credentials_file = c.nats.credentials;
  o.tls_ca = c.nats.tls_ca;
  o.tls_cert = c.nats.tls_cert;
  o.tls_key = c.nats.tls_key;
  o.max_reconnect = static_cast<int>(c.nats.max_reconnect);
  o.reconnect_wait_ms = c.nats.reconnect_wait_ms;
  o.connect_timeout_ms = c.nats.connect_timeout_ms;
  o.request_timeout_ms = c.nats.request_timeout_ms;
  o.ping_interval_ms = c.nats.ping_interval_ms;
  o.max_pings_out = static_cast<int>(c.nats.max_pings_out);
  return o;
}

JetStreamOptions jetstream_options(const HostConfig& c) {
  JetStreamOptions o;
  o.namespaces = c.node.namespaces;
  o.stream_prefix = c.store.js_stream_prefix;
  o.replicas = static_cast<int>(c.store.js_replicas);
  o.storage = c.store.js_storage;
  o.max_age_ms = c.store.js_max_age_ms;
  o.max_bytes = c.store.js_max_bytes;
  o.duplicate_window_ms = c.store.js_duplicate_window_ms;
  o.node_id = c.node.id;
  o.publishers = c.store.js_publishers;
  return o;
}

SqliteOptions sqlite_options(const HostConfig& c) {
  SqliteOptions o;
  o.path = c.store.sqlite_path;
  o.synchronous = c.store.sqlite_synchronous;
  o.max_batch = c.store.sqlite_max_batch;
  o.outbox = c.nats.enabled;  // with NATS, commits also go to an outbox that a relay broadcasts
  o.node_id = c.node.id;
  return o;
}

SwapOptions swap_options(const HostConfig& c) {
  SwapOptions o;
  o.allow_breaking = c.plugins.allow_breaking_reload;
  o.pause_timeout_ms = c.plugins.swap_pause_timeout_ms;
  return o;
}

BusOptions bus_options(const HostConfig& c) { return {.subscriber_queue = c.bus.subscriber_queue}; }

HttpOptions http_options(const HostConfig& c) {
  HttpOptions o;
  if (auto addr = parse_listen_address(c.api.http_listen)) {
    o.host = addr->first;
    o.port = addr->second;
  }
  o.max_body_bytes = c.api.max_body_bytes;
  o.bearer_token = c.api.bearer_token;
  o.threads = c.api.http_threads;
  o.node_id = c.node.id;
  o.header_timeout_ms = c.api.header_timeout_ms;
  o.idle_timeout_ms = c.api.idle_timeout_ms;
  o.request_timeout_ms = c.api.request_timeout_ms;
  o.max_connections = c.api.max_connections;
  o.max_header_bytes = c.api.max_header_bytes;
  o.max_header_count = c.api.max_header_count;
  o.allowed_origins = c.api.allowed_origins;
  o.max_json_depth = c.api.max_json_depth;
  o.max_event_streams = c.api.max_event_streams;
  o.event_stream_queue = c.api.event_stream_queue;
  return o;
}

}  // namespace aether
