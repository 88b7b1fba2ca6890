// The config module: the host's YAML configuration.
//
// Every key has a default (docs/configuration.md). Scalars may use
// ${VAR} and ${VAR:-default} environment substitution. An unknown key, a
// wrong type or a bad value is an error naming the file, the line and the key
// path, e.g.
//   config/aether.yaml:12: actors.snapshot.every: expected an unsigned
//   integer, got "often"
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/json_limits.hpp"
#include "core/shadow_options.hpp"
#include "core/status.hpp"

namespace aether {

struct SnapshotConfig {
  uint32_t every = 100;
  uint32_t keep = 2;
};

// actors.idempotency: the keys an active actor remembers from its journal.
struct IdempotencyConfig {
  uint32_t retention_keys = 100;
  int64_t retention_age_ms = 0;  // 0 = no age limit
};

struct ActorTypeConfig {
  std::optional<SnapshotConfig> snapshot;
  std::optional<int64_t> idle_timeout_ms;
  std::optional<uint32_t> mailbox_size;
  std::optional<int64_t> call_timeout_ms;
};

struct HostConfig {
  std::string source;  // the file name (or "<embedded>") the config came from

  struct Node {
    std::string id = "node-1";
    std::vector<std::string> namespaces = {"default"};
    // Where the host keeps its local files (lock file, plugin copies).
    // Empty: the directory of store.sqlite.path with the sqlite store, none
    // otherwise (see data_directory()).
    std::string data_dir;
  } node;

  struct Store {
    std::string backend = "sqlite";  // memory | sqlite | jetstream
    std::string sqlite_path = "./data/aether.db";
    std::string sqlite_synchronous = "full";
    uint32_t sqlite_max_batch = 1024;
    std::string js_stream_prefix = "AETHER_";
    uint32_t js_replicas = 1;
    std::string js_storage = "file";
    int64_t js_max_age_ms = 0;
    int64_t js_max_bytes = -1;
    int64_t js_duplicate_window_ms = 0;  // 0 = the server's default (2 minutes)
    uint32_t js_publishers = 32;
  } store;

  struct Nats {
    bool enabled = false;
    std::vector<std::string> servers = {"nats://127.0.0.1:4222"};
    std::string name = "aether-host";
    std::string user;
    std::string password;
    std::string token;
    std::string credentials;
    std::string tls_ca;
    std::string tls_cert;
    std::string tls_key;
    int64_t max_reconnect = -1;
    int64_t reconnect_wait_ms = 250;
    int64_t connect_timeout_ms = 2000;
    int64_t request_timeout_ms = 500;
    // A server that stops answering (a paused process, a dead link) is left
    // for another after max_pings_out pings, ping_interval apart, go
    // unanswered (the defaults are the NATS client library's).
    int64_t ping_interval_ms = 120000;
    uint64_t max_pings_out = 2;
    // At start: how long to keep retrying the connection and the creation of
    // streams and buckets while NATS or JetStream is not ready (0: no retry).
    int64_t startup_wait_ms = 30000;
    bool ingress = true;
  } nats;

  struct Plugins {
    std::string dir = "build/plugins";
    std::vector<std::string> list;  // names (dir/NAME.so) or paths; empty = every .so in dir
    // Other directories a reload may load plugin files from (besides dir).
    std::vector<std::string> allowed_dirs;
    bool watch = false;
    int64_t watch_interval_ms = 1000;
    bool allow_breaking_reload = false;
    int64_t swap_pause_timeout_ms = 10000;
    ShadowOptions shadow_check;  // the shadow check before a reload
    // Versions of their own for some namespaces (canaries): namespace ->
    // entries as in `list`, each a version of a plugin that `list` loads.
    std::map<std::string, std::vector<std::string>> namespaces;
  } plugins;

  struct Actors {
    uint32_t workers = 0;
    uint32_t io_threads = 16;
    uint32_t max_active = 100000;
    int64_t idle_timeout_ms = 300000;
    uint32_t mailbox_size = 1024;
    uint32_t conflict_retries = 3;
    int64_t call_timeout_ms = 5000;  // a plugin call's time limit (0: none)
    uint32_t max_stuck_calls = 8;    // given-up calls of a plugin before its calls are refused
    SnapshotConfig snapshot;
    IdempotencyConfig idempotency;
    std::map<std::string, ActorTypeConfig, std::less<>> types;
  } actors;

  struct Api {
    bool http_enabled = true;
    std::string http_listen = "127.0.0.1:8080";
    uint64_t max_body_bytes = 1 << 20;
    std::string bearer_token;  // empty = no authentication
    uint32_t http_threads = 0;  // 0 = from the number of cores
    int64_t header_timeout_ms = 10000;
    int64_t idle_timeout_ms = 60000;
    int64_t request_timeout_ms = 60000;
    uint32_t max_connections = 1024;
    uint64_t max_header_bytes = 16 << 10;
    uint32_t max_header_count = 100;
    std::vector<std::string> allowed_origins;  // empty = no cross-origin request
    bool allow_unauthenticated_remote = false;
    uint32_t max_json_depth = kDefaultMaxJsonDepth;  // request bodies and NATS command messages
    uint32_t max_event_streams = 64;    // GET /v1/{ns}/events/stream open at once
    uint32_t event_stream_queue = 1024;  // commits buffered per stream client
  } api;

  struct Log {
    std::string level = "info";
    std::string format = "text";
  } log;

  struct Bus {
    uint64_t subscriber_queue = 65536;
  } bus;

  struct Cluster {
    bool enabled = false;
    uint32_t shards = 1024;
    uint32_t vnodes = 64;
    int64_t node_ttl_ms = 3000;
    int64_t heartbeat_ms = 1000;
    int64_t failover_after_ms = 0;  // 0: off (the node TTL decides)
    uint32_t max_moves = 64;
    int64_t handoff_timeout_ms = 10000;
    int64_t route_wait_ms = 5000;
    int64_t forward_timeout_ms = 5000;
    int64_t leave_timeout_ms = 30000;
    std::string bucket_prefix = "AETHER_CLUSTER";
    uint32_t replicas = 1;
  } cluster;

  // The host's data directory: node.data_dir if set, else the directory of
  // the sqlite file with the sqlite store, else empty (no local data).
  std::string data_directory() const;

  // The resolved plugin files, in load order.
  std::vector<std::string> plugin_files() const;
  // The resolved files of plugins.namespaces.<ns>.
  std::vector<std::string> namespace_plugin_files(const std::string& ns) const;

  // The directories plugin files may be loaded from by a reload:
  // plugins.dir, then plugins.allowed_dirs.
  std::vector<std::string> plugin_load_dirs() const;

  // Where the host keeps private copies of its plugin images:
  // <data_directory()>/plugins.loaded, or empty when there is no data
  // directory (then a per-process directory under TMPDIR).
  std::string plugin_copy_dir() const;
};

// Parses and validates. `name` is used in messages (the file name).
Result<HostConfig> parse_config(const std::string& text, const std::string& name);

// The largest configuration file load_config_file reads.
constexpr size_t kMaxConfigFileBytes = 1 << 20;

// Reads FILE and parses it; a missing or unreadable file, anything but a
// regular file (a directory, a FIFO, a device) and a file larger than
// kMaxConfigFileBytes are errors naming it.
Result<HostConfig> load_config_file(const std::string& file);

// The embedded default configuration (config/aether.yaml as built in).
const std::string& embedded_default_config();

// Splits "host:port"; fails with a message for anything else.
Result<std::pair<std::string, int>> parse_listen_address(const std::string& value);
// True for a listen address on loopback only (127.0.0.0/8, ::1, localhost).
bool is_loopback_listen(const std::string& listen);

// Expands ${VAR} and ${VAR:-default}; fails on an unterminated reference or
// an unset variable without default.
Result<std::string> substitute_env(const std::string& value);

}  // namespace aether
