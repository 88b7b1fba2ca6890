#include "config/config.hpp"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "core/names.hpp"

namespace aether {

Result<std::string> substitute_env(const std::string& value) {
  std::string out;
  size_t i = 0;
  while (i < value.size()) {
    const size_t start = value.find("${", i);
    if (start == std::string::npos) {
      out.append(value, i, std::string::npos);
      break;
    }
    out.append(value, i, start - i);
    const size_t end = value.find('}', start);
    if (end == std::string::npos) {
      return Status::invalid("unterminated ${ in " + quote_for_message(value));
    }
    const std::string ref = value.substr(start + 2, end - start - 2);
    const size_t dflt = ref.find(":-");
    const std::string var = ref.substr(0, dflt);
    if (var.empty()) return Status::invalid("empty variable name in " + quote_for_message(value));
    const char* env = std::getenv(var.c_str());
    if (env != nullptr && (*env != '\0' || dflt == std::string::npos)) {
      out += env;
    } else if (dflt != std::string::npos) {
      out += ref.substr(dflt + 2);
    } else {
      return Status::invalid("environment variable " + var + " is not set (use ${" + var +
                             ":-default} for a default)");
    }
    i = end + 1;
  }
  return out;
}

Result<std::pair<std::string, int>> parse_listen_address(const std::string& value) {
  const size_t colon = value.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::invalid("expected host:port, got " + quote_for_message(value));
  }
  const std::string host = value.substr(0, colon);
  const std::string port = value.substr(colon + 1);
  char* end = nullptr;
  errno = 0;
  const long p = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || errno != 0 || p < 0 || p > 65535) {
    return Status::invalid("port must be a number from 0 to 65535, got " +
                           quote_for_message(port));
  }
  return std::make_pair(host, static_cast<int>(p));
}

std::string HostConfig::data_directory() const {
  if (!node.data_dir.empty()) return node.data_dir;
  if (store.backend != "sqlite") return {};
  const std::string dir = std::filesystem::path(store.sqlite_path).parent_path().string();
  return dir.empty() ? "." : dir;
}

std::vector<std::string> HostConfig::plugin_files() const {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  if (plugins.list.empty()) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(plugins.dir, ec)) {
      if (e.path().extension() == ".so") out.push_back(e.path().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  for (const auto& p : plugins.list) {
    if (p.find('/') != std::string::npos || p.ends_with(".so")) {
      out.push_back(p);
    } else {
      out.push_back((fs::path(plugins.dir) / (p + ".so")).string());
    }
  }
  return out;
}

namespace {

// Walks the YAML tree with the schema, collecting the first error.
class Parser {
 public:
  explicit Parser(std::string file) : file_(std::move(file)) {}

  Status status() const { return status_; }
  bool ok() const { return status_.is_ok(); }

  std::string at(const YAML::Node& n, const std::string& path) const {
    std::string where = file_;
    if (n.Mark().line >= 0) where += ":" + std::to_string(n.Mark().line + 1);
    return where + ": " + path + ": ";
  }

  void fail(const YAML::Node& n, const std::string& path, const std::string& what) {
    if (ok()) status_ = Status::invalid(at(n, path) + what);
  }

  using Handler = std::function<void(const YAML::Node&, const std::string& path)>;

  // Visits a mapping; every key must be in `keys`.
  void map(const YAML::Node& n, const std::string& path,
           const std::vector<std::pair<std::string, Handler>>& keys) {
    if (!ok() || !n || n.IsNull()) return;
    if (!n.IsMap()) return fail(n, path.empty() ? "(top level)" : path, "expected a mapping");
    for (const auto& kv : n) {
      if (!ok()) return;
      const std::string key = kv.first.Scalar();
      const std::string child = path.empty() ? key : path + "." + key;
      const Handler* h = nullptr;
      for (const auto& [name, handler] : keys) {
        if (name == key) h = &handler;
      }
      if (h == nullptr) {
        std::string known;
        for (const auto& [name, _] : keys) known += (known.empty() ? "" : ", ") + name;
        return fail(kv.first, child, "unknown key (known here: " + known + ")");
      }
      (*h)(kv.second, child);
    }
  }

  // A scalar with ${...} substituted.
  std::optional<std::string> scalar(const YAML::Node& n, const std::string& path) {
    if (!ok()) return std::nullopt;
    if (!n.IsScalar()) {
      fail(n, path, std::string("expected a scalar value, got a ") +
                        (n.IsMap() ? "mapping" : n.IsSequence() ? "sequence" : "null"));
      return std::nullopt;
    }
    auto v = substitute_env(n.Scalar());
    if (!v) {
      fail(n, path, v.status().message());
      return std::nullopt;
    }
    return std::move(v).value();
  }

  void str(const YAML::Node& n, const std::string& path, std::string& out) {
    if (auto v = scalar(n, path)) out = *v;
  }

  template <class T>
  void uint(const YAML::Node& n, const std::string& path, T& out, uint64_t min = 0,
            uint64_t max = UINT32_MAX) {
    auto v = scalar(n, path);
    if (!v) return;
    char* end = nullptr;
    errno = 0;
    const unsigned long long x = std::strtoull(v->c_str(), &end, 10);
    if (v->empty() || *end != '\0' || errno != 0 || (*v)[0] == '-') {
      return fail(n, path, "expected an unsigned integer, got " + quote_for_message(*v));
    }
    if (x < min || x > max) {
      return fail(n, path, "must be between " + std::to_string(min) + " and " +
                               std::to_string(max) + ", got " + *v);
    }
    out = static_cast<T>(x);
  }

  void boolean(const YAML::Node& n, const std::string& path, bool& out) {
    auto v = scalar(n, path);
    if (!v) return;
    if (*v == "true" || *v == "yes" || *v == "on") {
      out = true;
    } else if (*v == "false" || *v == "no" || *v == "off") {
      out = false;
    } else {
      fail(n, path, "expected true or false, got " + quote_for_message(*v));
    }
  }

  // "250ms", "30s", "5m", "1h", or a number of milliseconds; 0 = never.
  void duration(const YAML::Node& n, const std::string& path, int64_t& out) {
    auto v = scalar(n, path);
    if (!v) return;
    char* end = nullptr;
    errno = 0;
    const long long x = std::strtoll(v->c_str(), &end, 10);
    const std::string unit = end;
    int64_t mul = 0;
    if (unit.empty() || unit == "ms") mul = 1;
    else if (unit == "s") mul = 1000;
    else if (unit == "m") mul = 60000;
    else if (unit == "h") mul = 3600000;
    if (v->empty() || end == v->c_str() || errno != 0 || x < 0 || mul == 0) {
      return fail(n, path, "expected a duration like 250ms, 30s, 5m or 1h, got " +
                               quote_for_message(*v));
    }
    out = x * mul;
  }

  void one_of(const YAML::Node& n, const std::string& path, std::string& out,
              const std::vector<std::string>& allowed) {
    auto v = scalar(n, path);
    if (!v) return;
    for (const auto& a : allowed) {
      if (*v == a) {
        out = *v;
        return;
      }
    }
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    fail(n, path, "must be one of " + list + ", got " + quote_for_message(*v));
  }

  void str_list(const YAML::Node& n, const std::string& path, std::vector<std::string>& out) {
    if (!ok()) return;
    if (n.IsNull()) {
      out.clear();
      return;
    }
    if (!n.IsSequence()) return fail(n, path, "expected a list");
    out.clear();
    for (size_t i = 0; i < n.size(); ++i) {
      auto v = scalar(n[i], path + "[" + std::to_string(i) + "]");
      if (!v) return;
      out.push_back(*v);
    }
  }

  void snapshot(const YAML::Node& n, const std::string& path, SnapshotConfig& out) {
    map(n, path,
        {{"every", [&](auto& v, auto& p) { uint(v, p, out.every); }},
         {"keep", [&](auto& v, auto& p) { uint(v, p, out.keep, 1, 1000); }}});
  }

  void idempotency(const YAML::Node& n, const std::string& path, IdempotencyConfig& out) {
    map(n, path, {{"retention", [&](auto& v, auto& p) {
                    map(v, p,
                        {{"keys", [&](auto& x, auto& q) { uint(x, q, out.retention_keys, 1, 100000); }},
                         {"age", [&](auto& x, auto& q) { duration(x, q, out.retention_age_ms); }}});
                  }}});
  }

 private:
  std::string file_;
  Status status_;
};

}  // namespace

Result<HostConfig> parse_config(const std::string& text, const std::string& name) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    std::string where = name;
    if (e.mark.line >= 0) where += ":" + std::to_string(e.mark.line + 1);
    return Status::invalid(where + ": invalid YAML: " + e.msg);
  }
  HostConfig c;
  c.source = name;
  Parser p(name);
  YAML::Node plugin_list_node;
  YAML::Node backend_node;
  YAML::Node cluster_node;
  YAML::Node listen_node;
  p.map(root, "",
        {{"node",
          [&](auto& n, auto& path) {
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
          }},
         {"store",
          [&](auto& n, auto& path) {
            p.map(n, path,
                  {{"backend",
                    [&](auto& v, auto& k) {
                      backend_node = v;
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
          }},
         {"plugins",
          [&](auto& n, auto& path) {
            p.map(n, path,
                  {{"dir", [&](auto& v, auto& k) { p.str(v, k, c.plugins.dir); }},
                   {"list",
                    [&](auto& v, auto& k) {
                      plugin_list_node = v;
                      p.str_list(v, k, c.plugins.list);
                    }},
                   {"watch", [&](auto& v, auto& k) { p.boolean(v, k, c.plugins.watch); }},
                   {"watch_interval",
                    [&](auto& v, auto& k) { p.duration(v, k, c.plugins.watch_interval_ms); }},
                   {"allow_breaking_reload",
                    [&](auto& v, auto& k) { p.boolean(v, k, c.plugins.allow_breaking_reload); }},
                   {"swap_pause_timeout", [&](auto& v, auto& k) {
                      p.duration(v, k, c.plugins.swap_pause_timeout_ms);
                    }}});
          }},
         {"actors",
          [&](auto& n, auto& path) {
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
                               {"mailbox_size", [&](auto& x, auto& kk) {
                                  uint32_t m = 0;
                                  p.uint(x, kk, m, 1, 1000000);
                                  tc.mailbox_size = m;
                                }}});
                      }
                    }}});
          }},
         {"api",
          [&](auto& n, auto& path) {
            p.map(n, path,
                  {{"http", [&](auto& v, auto& k) {
                      p.map(v, k,
                            {{"enabled",
                              [&](auto& x, auto& kk) { p.boolean(x, kk, c.api.http_enabled); }},
                             {"listen",
                              [&](auto& x, auto& kk) {
                                listen_node = x;
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
                                p.uint(x, kk, c.api.http_threads, 1, 1024);
                              }}});
                    }}});
          }},
         {"log",
          [&](auto& n, auto& path) {
            p.map(n, path,
                  {{"level",
                    [&](auto& v, auto& k) {
                      p.one_of(v, k, c.log.level, {"debug", "info", "warn", "error", "off"});
                    }},
                   {"format",
                    [&](auto& v, auto& k) { p.one_of(v, k, c.log.format, {"text", "json"}); }}});
          }},
         {"bus",
          [&](auto& n, auto& path) {
            p.map(n, path, {{"subscriber_queue", [&](auto& v, auto& k) {
                               p.uint(v, k, c.bus.subscriber_queue, 1, 100000000);
                             }}});
          }},
         {"nats",
          [&](auto& n, auto& path) {
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
                   {"startup_wait", [&](auto& v, auto& k) { p.duration(v, k, x.startup_wait_ms); }},
                   {"ingress", [&](auto& v, auto& k) { p.boolean(v, k, x.ingress); }}});
            if (p.ok() && x.enabled && x.servers.empty()) p.fail(n, path + ".servers", "at least one server is needed");
          }},
         {"cluster", [&](auto& n, auto& path) {
            auto& x = c.cluster;
            cluster_node = n;
            p.map(n, path,
                  {{"enabled", [&](auto& v, auto& k) { p.boolean(v, k, x.enabled); }},
                   {"shards", [&](auto& v, auto& k) { p.uint(v, k, x.shards, 1, 1u << 20); }},
                   {"vnodes", [&](auto& v, auto& k) { p.uint(v, k, x.vnodes, 1, 4096); }},
                   {"node_ttl", [&](auto& v, auto& k) { p.duration(v, k, x.node_ttl_ms); }},
                   {"heartbeat", [&](auto& v, auto& k) { p.duration(v, k, x.heartbeat_ms); }},
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
          }}});
  if (p.ok() && c.cluster.enabled && !c.nats.enabled) {
    p.fail(cluster_node, "cluster.enabled", "a cluster needs nats.enabled: true");
  }
  if (p.ok() && c.cluster.enabled && c.store.backend != "jetstream") {
    p.fail(cluster_node, "cluster.enabled", "a cluster needs store.backend: jetstream (one store for all nodes)");
  }
  if (p.ok() && c.store.backend == "jetstream" && !c.nats.enabled) {
    p.fail(backend_node, "store.backend", "the jetstream store needs nats.enabled: true");
  }
  if (!p.ok()) return p.status();

  // Plugin files must exist: name the line that lists the missing one.
  namespace fs = std::filesystem;
  const auto files = c.plugin_files();
  if (c.plugins.list.empty()) {
    std::error_code ec;
    if (!fs::is_directory(c.plugins.dir, ec)) {
      return Status::invalid(name + ": plugins.dir: directory " + quote_for_message(c.plugins.dir) +
                             " does not exist");
    }
  }
  for (size_t i = 0; i < files.size(); ++i) {
    std::error_code ec;
    if (!fs::exists(files[i], ec)) {
      std::string where = name;
      if (plugin_list_node && i < plugin_list_node.size()) {
        where += ":" + std::to_string(plugin_list_node[i].Mark().line + 1);
      }
      return Status::invalid(where + ": plugins.list[" + std::to_string(i) + "]: plugin file " +
                             files[i] + " does not exist");
    }
  }
  return c;
}

Result<HostConfig> load_config_file(const std::string& file) {
  std::ifstream in(file);
  if (!in) return Status::not_found(file + ": cannot read the configuration file");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), file);
}

}  // namespace aether
