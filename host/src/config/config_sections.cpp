// The configuration's sections, one parser each, and parse_config() which
// walks them (docs/configuration.md lists every key with its default).
#include <yaml-cpp/yaml.h>

#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "config/yaml_parser.hpp"
#include "core/json_limits.hpp"
#include "core/names.hpp"

namespace aether {

namespace {

using config_internal::check_plugin_files;
using config_internal::load_document;
using config_internal::Marks;
using config_internal::Parser;

// node: id, namespaces, data_dir
void node_section(Parser& p, const YAML::Node& n, const std::string& path, HostConfig& c, Marks&) {
  p.map(n, path,
        {{"id", [&](auto& v, auto& k) { p.str(v, k, c.node.id); }},
         {"namespace",
          [&](auto& v, auto& k) {
            std::string ns;
            p.str(v, k, ns);
            c.node.namespaces = {ns};
          }},
         {"namespaces", [&](auto& v, auto& k) { p.str_list(v, k, c.node.namespaces); }},
         {"data_dir", [&](auto& v, auto& k) { p.str(v, k, c.node.data_dir); }}});
  if (!p.ok()) return;
  if (std::string why = check_name(c.node.id); !why.empty()) {
    p.fail(n, path + ".id", "node id " + quote_for_message(c.node.id) + " " + why);
  }
  if (c.node.namespaces.empty()) p.fail(n, path, "at least one namespace is needed");
  for (const auto& ns : c.node.namespaces) {
    if (std::string why = check_name(ns); !why.empty() && p.ok()) {
      p.fail(n, path + ".namespaces", "namespace " + quote_for_message(ns) + " " + why);
    }
  }
}

// store: backend and its jetstream / sqlite options
void store_section(Parser& p, const YAML::Node& n, const std::string& path, HostConfig& c, Marks& marks) {
  p.map(n, path,
        {{"backend",
          [&](auto& v, auto& k) {
            marks.backend = v;
            p.one_of(v, k, c.store.backend, {"memory", "sqlite", "jetstream"});
          }},
         {"jetstream",
          [&](auto& v, auto& k) {
            YAML::Node dup_window_node;
            p.map(v, k,
                  {{"stream_prefix",
                    [&](auto& x, auto& kk) {
                      p.str(x, kk, c.store.js_stream_prefix);
                      if (p.ok() && !check_name(c.store.js_stream_prefix).empty()) {
                        p.fail(x, kk, "stream prefix " + check_name(c.store.js_stream_prefix));
                      }
                    }},
                   {"replicas", [&](auto& x, auto& kk) { p.uint(x, kk, c.store.js_replicas, 1, 5); }},
                   {"storage",
                    [&](auto& x, auto& kk) { p.one_of(x, kk, c.store.js_storage, {"file", "memory"}); }},
                   {"max_age", [&](auto& x, auto& kk) { p.duration(x, kk, c.store.js_max_age_ms); }},
                   {"max_bytes",
                    [&](auto& x, auto& kk) {
                      uint64_t b = 0;
                      p.uint(x, kk, b, 0, INT64_MAX);
                      c.store.js_max_bytes = b == 0 ? -1 : static_cast<int64_t>(b);
                    }},
                   {"duplicate_window",
                    [&](auto& x, auto& kk) {
                      dup_window_node = x;
                      p.duration(x, kk, c.store.js_duplicate_window_ms);
                    }},
                   {"publishers", [&](auto& x, auto& kk) {
                      p.uint(x, kk, c.store.js_publishers, 1, 1024);
                    }}});
            if (p.ok() && c.store.js_max_age_ms > 0 && c.store.js_duplicate_window_ms > c.store.js_max_age_ms) {
              p.fail(dup_window_node, k + ".duplicate_window", "must not be longer than max_age");
            }
          }},
         {"sqlite", [&](auto& v, auto& k) {
            p.map(v, k,
                  {{"path", [&](auto& x, auto& kk) { p.str(x, kk, c.store.sqlite_path); }},
                   {"synchronous",
                    [&](auto& x, auto& kk) {
                      p.one_of(x, kk, c.store.sqlite_synchronous,
                               {"off", "normal", "full", "extra"});
                    }},
                   {"max_batch", [&](auto& x, auto& kk) {
                      p.uint(x, kk, c.store.sqlite_max_batch, 1, 100000);
                    }}});
          }}});
}

// plugins: dir or list, allowed_dirs, watch, reload rules
void plugins_section(Parser& p, const YAML::Node& n, const std::string& path, HostConfig& c, Marks& marks) {
  p.map(n, path,
        {{"dir",
          [&](auto& v, auto& k) {
            marks.plugin_dir = v;
            p.str(v, k, c.plugins.dir);
          }},
         {"list",
          [&](auto& v, auto& k) {
            marks.plugin_list = v;
            p.str_list(v, k, c.plugins.list);
          }},
         {"allowed_dirs",
          [&](auto& v, auto& k) {
            marks.allowed_dirs = v;
            p.str_list(v, k, c.plugins.allowed_dirs);
          }},
         {"watch", [&](auto& v, auto& k) { p.boolean(v, k, c.plugins.watch); }},
         {"watch_interval",
          [&](auto& v, auto& k) { p.duration(v, k, c.plugins.watch_interval_ms); }},
         {"allow_breaking_reload",
          [&](auto& v, auto& k) { p.boolean(v, k, c.plugins.allow_breaking_reload); }},
         {"swap_pause_timeout",
          [&](auto& v, auto& k) { p.duration(v, k, c.plugins.swap_pause_timeout_ms); }},
         {"shadow_check", [&](auto& v, auto& k) { p.shadow_check(v, k, c.plugins.shadow_check); }},
         {"namespaces", [&](auto& v, auto& k) {
            marks.namespace_versions = v;
            if (!v.IsNull() && !v.IsMap()) return p.fail(v, k, "expected a mapping: namespace -> list of plugin files");
            c.plugins.namespaces.clear();
            for (const auto& kv : v) p.str_list(kv.second, k + "." + kv.first.Scalar(), c.plugins.namespaces[kv.first.Scalar()]);
          }}});
}

// actors: workers, limits, timeouts, snapshots, idempotency, per-type overrides
void actors_section(Parser& p, const YAML::Node& n, const std::string& path, HostConfig& c, Marks&) {
  p.map(n, path,
        {{"workers", [&](auto& v, auto& k) { p.uint(v, k, c.actors.workers, 0, 1024); }},
         {"io_threads", [&](auto& v, auto& k) { p.uint(v, k, c.actors.io_threads, 1, 1024); }},
         {"max_active",
          [&](auto& v, auto& k) { p.uint(v, k, c.actors.max_active, 1); }},
         {"idle_timeout",
          [&](auto& v, auto& k) { p.duration(v, k, c.actors.idle_timeout_ms); }},
         {"mailbox_size",
          [&](auto& v, auto& k) { p.uint(v, k, c.actors.mailbox_size, 1, 1000000); }},
         {"conflict_retries",
          [&](auto& v, auto& k) { p.uint(v, k, c.actors.conflict_retries, 0, 100); }},
         {"call_timeout",
          [&](auto& v, auto& k) { p.duration(v, k, c.actors.call_timeout_ms); }},
         {"max_stuck_calls",
          [&](auto& v, auto& k) { p.uint(v, k, c.actors.max_stuck_calls, 1, 1024); }},
         {"snapshot", [&](auto& v, auto& k) { p.snapshot(v, k, c.actors.snapshot); }},
         {"idempotency", [&](auto& v, auto& k) { p.idempotency(v, k, c.actors.idempotency); }},
         {"types", [&](auto& v, auto& k) {
            if (!p.ok() || v.IsNull()) return;
            if (!v.IsMap()) return p.fail(v, k, "expected a mapping of actor types");
            for (const auto& kv : v) {
              const std::string type = kv.first.Scalar();
              const std::string tp = k + "." + type;
              if (std::string why = check_name(type); !why.empty()) {
                return p.fail(kv.first, tp, "actor type name " + why);
              }
              ActorTypeConfig& tc = c.actors.types[type];
              p.map(kv.second, tp,
                    {{"snapshot",
                      [&](auto& x, auto& kk) {
                        SnapshotConfig s = c.actors.snapshot;
                        p.snapshot(x, kk, s);
                        tc.snapshot = s;
                      }},
                     {"idle_timeout",
                      [&](auto& x, auto& kk) {
                        int64_t ms = 0;
                        p.duration(x, kk, ms);
                        tc.idle_timeout_ms = ms;
                      }},
                     {"mailbox_size",
                      [&](auto& x, auto& kk) {
                        uint32_t m = 0;
                        p.uint(x, kk, m, 1, 1000000);
                        tc.mailbox_size = m;
                      }},
                     {"call_timeout", [&](auto& x, auto& kk) {
                        int64_t ms = 0;
                        p.duration(x, kk, ms);
                        tc.call_timeout_ms = ms;
                      }}});
            }
          }}});
}

// api: http (listen, token, limits) and max_json_depth; a remote listener needs a token
void api_section(Parser& p, const YAML::Node& n, const std::string& path, HostConfig& c, Marks& marks) {
  p.map(n, path,
        {{"http", [&](auto& v, auto& k) {
            p.map(v, k,
                  {{"enabled",
                    [&](auto& x, auto& kk) { p.boolean(x, kk, c.api.http_enabled); }},
                   {"listen",
                    [&](auto& x, auto& kk) {
                      marks.listen = x;
                      p.str(x, kk, c.api.http_listen);
                      if (!p.ok()) return;
                      if (auto a = parse_listen_address(c.api.http_listen); !a) {
                        p.fail(x, kk, a.status().message());
                      }
                    }},
                   {"max_body_bytes",
                    [&](auto& x, auto& kk) {
                      p.uint(x, kk, c.api.max_body_bytes, 64, 1ull << 30);
                    }},
                   {"bearer_token",
                    [&](auto& x, auto& kk) { p.str(x, kk, c.api.bearer_token); }},
                   {"threads", [&](auto& x, auto& kk) {
                      p.uint(x, kk, c.api.http_threads, 0, 1024);
                    }},
                   {"header_timeout",
                    [&](auto& x, auto& kk) { p.duration(x, kk, c.api.header_timeout_ms); }},
                   {"idle_timeout",
                    [&](auto& x, auto& kk) { p.duration(x, kk, c.api.idle_timeout_ms); }},
                   {"request_timeout",
                    [&](auto& x, auto& kk) { p.duration(x, kk, c.api.request_timeout_ms); }},
                   {"max_connections",
                    [&](auto& x, auto& kk) { p.uint(x, kk, c.api.max_connections, 1, 1000000); }},
                   {"max_header_bytes",
                    [&](auto& x, auto& kk) {
                      p.uint(x, kk, c.api.max_header_bytes, 1024, 1ull << 20);
                    }},
                   {"max_header_count",
                    [&](auto& x, auto& kk) { p.uint(x, kk, c.api.max_header_count, 1, 10000); }},
                   {"allowed_origins",
                    [&](auto& x, auto& kk) { p.str_list(x, kk, c.api.allowed_origins); }},
                   {"allow_unauthenticated_remote",
                    [&](auto& x, auto& kk) { p.boolean(x, kk, c.api.allow_unauthenticated_remote); }},
                   {"max_event_streams",
                    [&](auto& x, auto& kk) { p.uint(x, kk, c.api.max_event_streams, 0, 100000); }},
                   {"event_stream_queue", [&](auto& x, auto& kk) {
                      p.uint(x, kk, c.api.event_stream_queue, 1, 1000000);
                    }}});
          }},
         {"max_json_depth", [&](auto& v, auto& k) {
            p.uint(v, k, c.api.max_json_depth, 2, kMaxConfigurableJsonDepth);
          }}});
  if (p.ok() && c.api.http_enabled && c.api.bearer_token.empty() &&
      !c.api.allow_unauthenticated_remote && !is_loopback_listen(c.api.http_listen)) {
    p.fail(marks.listen ? marks.listen : n, path + ".http.listen",
           quote_for_message(c.api.http_listen) +
               " is not a loopback address and api.http.bearer_token is not set: set a "
               "token, or api.http.allow_unauthenticated_remote: true to serve "
               "without one");
  }
}

// log: level and format
void log_section(Parser& p, const YAML::Node& n, const std::string& path, HostConfig& c, Marks&) {
  p.map(n, path,
        {{"level",
          [&](auto& v, auto& k) {
            p.one_of(v, k, c.log.level, {"debug", "info", "warn", "error", "off"});
          }},
         {"format",
          [&](auto& v, auto& k) { p.one_of(v, k, c.log.format, {"text", "json"}); }}});
}

// bus: subscriber_queue
void bus_section(Parser& p, const YAML::Node& n, const std::string& path, HostConfig& c, Marks&) {
  p.map(n, path, {{"subscriber_queue", [&](auto& v, auto& k) {
                     p.uint(v, k, c.bus.subscriber_queue, 1, 100000000);
                   }}});
}

// nats: servers, credentials, TLS, reconnects, timeouts, ingress
void nats_section(Parser& p, const YAML::Node& n, const std::string& path, HostConfig& c, Marks&) {
  auto& x = c.nats;
  p.map(n, path,
        {{"enabled", [&](auto& v, auto& k) { p.boolean(v, k, x.enabled); }},
         {"servers", [&](auto& v, auto& k) { p.str_list(v, k, x.servers); }},
         {"name", [&](auto& v, auto& k) { p.str(v, k, x.name); }},
         {"user", [&](auto& v, auto& k) { p.str(v, k, x.user); }},
         {"password", [&](auto& v, auto& k) { p.str(v, k, x.password); }},
         {"token", [&](auto& v, auto& k) { p.str(v, k, x.token); }},
         {"credentials", [&](auto& v, auto& k) { p.str(v, k, x.credentials); }},
         {"tls",
          [&](auto& v, auto& k) {
            p.map(v, k,
                  {{"ca", [&](auto& y, auto& kk) { p.str(y, kk, x.tls_ca); }},
                   {"cert", [&](auto& y, auto& kk) { p.str(y, kk, x.tls_cert); }},
                   {"key", [&](auto& y, auto& kk) { p.str(y, kk, x.tls_key); }}});
          }},
         {"reconnect",
          [&](auto& v, auto& k) {
            p.map(v, k,
                  {{"max_attempts",
                    [&](auto& y, auto& kk) {
                      auto s = p.scalar(y, kk);
                      if (!s) return;
                      if (*s == "-1" || *s == "forever") {
                        x.max_reconnect = -1;
                      } else {
                        uint64_t m = 0;
                        p.uint(y, kk, m, 0, 1000000);
                        x.max_reconnect = static_cast<int64_t>(m);
                      }
                    }},
                   {"wait", [&](auto& y, auto& kk) { p.duration(y, kk, x.reconnect_wait_ms); }}});
          }},
         {"connect_timeout", [&](auto& v, auto& k) { p.duration(v, k, x.connect_timeout_ms); }},
         {"request_timeout", [&](auto& v, auto& k) { p.duration(v, k, x.request_timeout_ms); }},
         {"ping_interval", [&](auto& v, auto& k) { p.duration(v, k, x.ping_interval_ms); }},
         {"max_pings_out", [&](auto& v, auto& k) { p.uint(v, k, x.max_pings_out, 1, 1000); }},
         {"startup_wait", [&](auto& v, auto& k) { p.duration(v, k, x.startup_wait_ms); }},
         {"ingress", [&](auto& v, auto& k) { p.boolean(v, k, x.ingress); }}});
  if (p.ok() && x.enabled && x.servers.empty()) p.fail(n, path + ".servers", "at least one server is needed");
}

// cluster: shards, vnodes, timings, buckets
void cluster_section(Parser& p, const YAML::Node& n, const std::string& path, HostConfig& c, Marks& marks) {
  auto& x = c.cluster;
  marks.cluster = n;
  p.map(n, path,
        {{"enabled", [&](auto& v, auto& k) { p.boolean(v, k, x.enabled); }},
         {"shards", [&](auto& v, auto& k) { p.uint(v, k, x.shards, 1, 1u << 20); }},
         {"vnodes", [&](auto& v, auto& k) { p.uint(v, k, x.vnodes, 1, 4096); }},
         {"node_ttl", [&](auto& v, auto& k) { p.duration(v, k, x.node_ttl_ms); }},
         {"heartbeat", [&](auto& v, auto& k) { p.duration(v, k, x.heartbeat_ms); }},
         {"failover_after", [&](auto& v, auto& k) { p.duration(v, k, x.failover_after_ms); }},
         {"rebalance_max_moves", [&](auto& v, auto& k) { p.uint(v, k, x.max_moves, 1, 1u << 20); }},
         {"handoff_timeout", [&](auto& v, auto& k) { p.duration(v, k, x.handoff_timeout_ms); }},
         {"route_wait", [&](auto& v, auto& k) { p.duration(v, k, x.route_wait_ms); }},
         {"forward_timeout", [&](auto& v, auto& k) { p.duration(v, k, x.forward_timeout_ms); }},
         {"leave_timeout", [&](auto& v, auto& k) { p.duration(v, k, x.leave_timeout_ms); }},
         {"bucket_prefix", [&](auto& v, auto& k) { p.str(v, k, x.bucket_prefix); }},
         {"replicas", [&](auto& v, auto& k) { p.uint(v, k, x.replicas, 1, 5); }}});
  if (p.ok() && x.heartbeat_ms >= x.node_ttl_ms) {
    p.fail(n, path + ".heartbeat", "must be shorter than cluster.node_ttl (" +
                                       std::to_string(x.node_ttl_ms) + " ms)");
  }
  if (p.ok() && x.heartbeat_ms < 50) p.fail(n, path + ".heartbeat", "must be at least 50ms");
  if (p.ok() && x.failover_after_ms != 0 &&
      (x.failover_after_ms <= x.heartbeat_ms || x.failover_after_ms >= x.node_ttl_ms)) {
    p.fail(n, path + ".failover_after", "must be 0 (off) or longer than cluster.heartbeat (" +
                                            std::to_string(x.heartbeat_ms) + " ms) and shorter than cluster.node_ttl (" +
                                            std::to_string(x.node_ttl_ms) + " ms)");
  }
}

}  // namespace

Result<HostConfig> parse_config(const std::string& text, const std::string& name) {
  auto doc = load_document(text, name);
  if (!doc) return doc.status();
  const YAML::Node root = *doc;
  HostConfig c;
  c.source = name;
  Parser p(name);
  p.structure(root);
  Marks marks;
  using Section = void (*)(Parser&, const YAML::Node&, const std::string&, HostConfig&, Marks&);
  const std::pair<const char*, Section> sections[] = {
      {"node", node_section}, {"store", store_section}, {"plugins", plugins_section},
      {"actors", actors_section}, {"api", api_section}, {"log", log_section},
      {"bus", bus_section}, {"nats", nats_section}, {"cluster", cluster_section}};
  std::vector<std::pair<std::string, Parser::Handler>> keys;
  for (const auto& [key, section] : sections) {
    keys.emplace_back(key, [&, section = section](const YAML::Node& n, const std::string& path) {
      section(p, n, path, c, marks);
    });
  }
  p.map(root, "", keys);
  if (p.ok() && c.cluster.enabled && !c.nats.enabled) {
    p.fail(marks.cluster, "cluster.enabled", "a cluster needs nats.enabled: true");
  }
  if (p.ok() && c.cluster.enabled && c.store.backend != "jetstream") {
    p.fail(marks.cluster, "cluster.enabled", "a cluster needs store.backend: jetstream (one store for all nodes)");
  }
  if (p.ok() && c.store.backend == "jetstream" && !c.nats.enabled) {
    p.fail(marks.backend, "store.backend", "the jetstream store needs nats.enabled: true");
  }
  if (!p.ok()) return p.status();

  if (Status s = check_plugin_files(c, name, marks); !s) {
    return s;
  }
  return c;
}

}  // namespace aether
